package bfd

import (
	"testing"
	"time"
)

func TestPacketRoundTrip(t *testing.T) {
	p := &packet{diag: DiagPathDown, state: Init, poll: true, detectMult: 3, myDiscr: 7, yourDiscr: 9,
		desiredMinTx: 50 * time.Millisecond, requiredMinRx: time.Second, echoMinRx: 0}
	b := p.marshal()
	// Version 1, diag 5; state Init (2) in the top bits, P set; length 24.
	if b[0] != 0x25 || b[1] != 0xa0 || b[2] != 3 || b[3] != 24 {
		t.Fatalf("header % x", b[:4])
	}
	q, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if *q != *p {
		t.Fatalf("round trip:\n got %+v\nwant %+v", q, p)
	}
}

func TestPacketRejects(t *testing.T) {
	good := (&packet{state: Up, detectMult: 3, myDiscr: 1, yourDiscr: 2}).marshal()
	for name, mod := range map[string]func(b []byte) []byte{
		"short":         func(b []byte) []byte { return b[:23] },
		"version 0":     func(b []byte) []byte { b[0] &= 0x1f; return b },
		"length long":   func(b []byte) []byte { b[3] = 30; return b },
		"length short":  func(b []byte) []byte { b[3] = 20; return b },
		"auth":          func(b []byte) []byte { b[1] |= flagAuth; return b },
		"multipoint":    func(b []byte) []byte { b[1] |= flagMultipoint; return b },
		"detect mult 0": func(b []byte) []byte { b[2] = 0; return b },
		"my discr 0":    func(b []byte) []byte { copy(b[4:8], []byte{0, 0, 0, 0}); return b },
		"your discr 0 while Up": func(b []byte) []byte {
			copy(b[8:12], []byte{0, 0, 0, 0})
			return b
		},
	} {
		b := append([]byte(nil), good...)
		if _, err := parse(mod(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Your Discriminator 0 is fine while Down: the neighbour does not
	// know ours yet.
	down := (&packet{state: Down, detectMult: 3, myDiscr: 1}).marshal()
	if _, err := parse(down); err != nil {
		t.Errorf("Down without your discriminator: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add((&packet{state: Up, detectMult: 3, myDiscr: 1, yourDiscr: 2, desiredMinTx: time.Second}).marshal())
	f.Add([]byte{0x20, 0x40, 3, 24})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parse(b)
		if err != nil {
			return
		}
		// Whatever parses survives a round trip unchanged.
		q, err := parse(p.marshal())
		if err != nil || *q != *p {
			t.Fatalf("round trip of %+v: %+v, %v", p, q, err)
		}
	})
}
