package bgp

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
)

// The set agrees with a Go map through random adds and removes, including
// the growing and shrinking in between and keys that collide.
func TestPrefixSetMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s prefixSet
	ref := map[uint64]bool{}
	for round := range 3 {
		for range 50000 {
			// A small key space makes repeats, collisions and long probe
			// runs common.
			k := uint64(rng.IntN(20000))<<8 | 129
			if rng.IntN(3) > 0 || round == 0 {
				s.add(k)
				ref[k] = true
			} else {
				s.remove(k)
				delete(ref, k)
			}
		}
		for k := range ref {
			s.remove(k)
			delete(ref, k)
			if rng.IntN(2) == 0 {
				break
			}
		}
		if s.len() != len(ref) {
			t.Fatalf("round %d: len %d, map %d", round, s.len(), len(ref))
		}
		seen := 0
		for _, k := range s.slots {
			if k != 0 {
				seen++
				if !ref[k] {
					t.Fatalf("set holds %x, map does not", k)
				}
			}
		}
		if seen != len(ref) {
			t.Fatalf("%d keys in slots, %d in map", seen, len(ref))
		}
	}
	for k := range ref {
		s.remove(k)
	}
	if s.len() != 0 || len(s.slots) != minSetSlots {
		t.Fatalf("emptied set: len %d, %d slots", s.len(), len(s.slots))
	}
}

// A full table, 1M IPv4 and 200k IPv6 prefixes, is counted in 16 MiB.
func TestReceivedFullTableMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a full table")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := newReceived()
	for i := range 1000000 {
		r.insert(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i >> 16), byte(i >> 8), byte(i), 0}), 24))
	}
	for i := range 200000 {
		r.insert(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, byte(i >> 16), byte(i >> 8), byte(i)}), 48))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d prefixes counted in %.1f MB (%.1f B each)", r.count(), float64(used)/1e6, float64(used)/float64(r.count()))
	if r.count() != 1200000 || used > 17<<20 {
		t.Errorf("%d prefixes in %d bytes", r.count(), used)
	}
	runtime.KeepAlive(r)
}
