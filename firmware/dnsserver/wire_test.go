package dnsserver

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// TestLowerASCII checks the eight-bytes-at-a-time lower-casing (lower8) against a
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
			binary.LittleEndian.PutUint64(b, lower8(binary.LittleEndian.Uint64(b)))
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

// TestParseNameLength: a question name of 255 octets is parsed, one of
// 256 (or one running past the message) is a format error.
func TestParseNameLength(t *testing.T) {
	build := func(total int) []byte {
		msg := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
		left := total - 1 // the root label
		for left > 0 {
			l := min(63, left-1)
			msg = append(msg, byte(l))
			msg = append(msg, strings.Repeat("A", l)...)
			left -= 1 + l
		}
		return append(msg, 0, 0, 1, 0, 1)
	}
	for _, c := range []struct {
		octets int
		ok     bool
	}{{1, true}, {200, true}, {255, true}, {256, false}, {300, false}} {
		var q query
		msg := build(c.octets)
		if !parseQuery(msg, &q) {
			t.Fatalf("%d octets: dropped", c.octets)
		}
		if got := !q.formerr; got != c.ok {
			t.Errorf("%d octets: parsed %v, want %v", c.octets, got, c.ok)
		}
		if c.ok && (q.keyLen != c.octets || strings.ContainsAny(q.keyString(), "A")) {
			t.Errorf("%d octets: key of %d octets, %q", c.octets, q.keyLen, q.keyString())
		}
	}
	var q query
	msg := build(40)
	if parseQuery(msg[:12+20], &q); !q.formerr {
		t.Error("a name running past the message parsed")
	}
}
