package dnsserver

import (
	"bytes"
	"testing"
)

// TestLowerASCII checks the eight-bytes-at-a-time lower-casing against a
// byte at a time for every byte value in every position.
func TestLowerASCII(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			b := []byte("\x05aBcDe\x00")
			b = append(b, 0)
			b[pos] = byte(c)
			want := bytes.Clone(b)
			for i, x := range want {
				if x >= 'A' && x <= 'Z' {
					want[i] = x + 32
				}
			}
			lowerASCII(b)
			if !bytes.Equal(b, want) {
				t.Fatalf("byte %#x at %d: got %q, want %q", c, pos, b, want)
			}
		}
	}
}

// TestParseNameCase: the key is the lower-cased wire name, whatever the
// case and label lengths of the question.
func TestParseNameCase(t *testing.T) {
	msg := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	msg = append(msg, "\x07HoSt-42\x05BENCH\x0dAbCdEfGhIjKlM\x04TeSt\x00\x00\x01\x00\x01"...)
	var q query
	if !parseQuery(msg, &q) || q.formerr {
		t.Fatal("not parsed")
	}
	if got, want := q.keyString(), "\x07host-42\x05bench\x0dabcdefghijklm\x04test\x00"; got != want {
		t.Fatalf("key %q, want %q", got, want)
	}
}
