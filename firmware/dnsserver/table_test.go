package dnsserver

import (
	"fmt"
	"testing"
)

// TestTableLookup: with few zones (compared one by one) and with many
// (the map), each origin is found by its wire name, names that are not
// an origin are not, and the length filter lets through every origin.
func TestTableLookup(t *testing.T) {
	for _, n := range []int{1, fewZones, fewZones + 1, 50} {
		tb := &table{zones: map[string]*Zone{}}
		for i := 0; i < n; i++ {
			o := fmt.Sprintf("z%d.%s.", i, "abcdefgh"[:i%8+1])
			w := mustWire(o)
			tb.zones[w] = &Zone{origin: o, apex: w}
		}
		tb.index()
		if (tb.few != nil) != (n <= fewZones) {
			t.Fatalf("%d zones: few=%v", n, tb.few != nil)
		}
		for w, z := range tb.zones {
			if !tb.mayHold(len(w)) {
				t.Fatalf("%d zones: length %d of %s filtered out", n, len(w), z.origin)
			}
			if got := tb.lookup([]byte(w)); got != z {
				t.Fatalf("%d zones: lookup %s got %v", n, z.origin, got)
			}
		}
		for _, o := range []string{"nope.", "z0.b.", "a.z0.a."} {
			if got := tb.lookup([]byte(mustWire(o))); got != nil {
				t.Fatalf("%d zones: lookup %s found %s", n, o, got.origin)
			}
		}
	}
}
