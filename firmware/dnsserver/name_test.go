package dnsserver

import "testing"

// TestCanonicalCompare orders the names of RFC 4034 §6.1's example, and
// compares them as strings and as byte slices alike.
func TestCanonicalCompare(t *testing.T) {
	names := []string{"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.",
		"z.example.", `\001.z.example.`, "*.z.example.", `\200.z.example.`}
	for i, a := range names {
		wa := mustWire(a)
		for j, b := range names {
			wb := mustWire(b)
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := canonicalCompare(wa, wb); got != want {
				t.Errorf("canonicalCompare(%s, %s) = %d, want %d", a, b, got, want)
			}
			if got := canonicalCompare(wa, []byte(wb)); got != want {
				t.Errorf("canonicalCompare(%s, []byte(%s)) = %d, want %d", a, b, got, want)
			}
		}
	}
}
