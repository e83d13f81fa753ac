package dnsserver

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// TestNSEC3Hash checks the hash names are looked up by (on the stack)
// against miekg/dns's, with and without a salt and iterations.
func TestNSEC3Hash(t *testing.T) {
	for _, p := range []struct {
		salt       string
		iterations uint16
	}{{"", 0}, {"AABBCCDD", 5}, {"01", 100}} {
		c := &nsec3Chain{iterations: p.iterations, salt: string(mustHex(t, p.salt))}
		for _, name := range []string{".", "example.com.", "*.wild.example.com.", "a.b.c.example.com.", strings.Repeat("x.", 100)} {
			h := c.hash([]byte(mustWire(name)))
			got := strings.ToUpper(nsec3Label.EncodeToString(h[:]))
			if want := dns.HashName(name, dns.SHA1, p.iterations, p.salt); got != want {
				t.Errorf("%s salt %q iterations %d: hash %s, miekg/dns %s", name, p.salt, p.iterations, got, want)
			}
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNSEC3ChainAnyOrder builds the NSEC3-signed test zone from its
// records in three orders: the zone's (the NSEC3 records together, the
// signatures after everything), the store's (each owner's records
// together) and shuffled, with a second chain of another salt mixed in,
// as while a signer changes salt; and in the store's order without it.
// Each time the chain must come out the
// same: an entry an owner, with its records and their signatures, only
// those of the NSEC3PARAM's salt.
func TestNSEC3ChainAnyOrder(t *testing.T) {
	zn := signZone(t, parseTestZone(t, "example.com.", testZone), signOptions{nsec3: true, salt: "AABBCCDD"})
	var other []dns.RR
	var sig *dns.RRSIG
	owners := 0
	for _, rr := range zn.Records {
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == dns.TypeNSEC3 {
			sig = s
		}
		if rr.Header().Rrtype == dns.TypeNSEC3 {
			owners++
		}
	}
	for _, rr := range nsec3TestChain(t, zn.Origin, zn.Records, signOptions{nsec3: true, salt: "01"}) {
		s := dns.Copy(sig).(*dns.RRSIG)
		s.Hdr.Name = rr.Header().Name
		other = append(other, rr, s)
	}
	recs := append(slices.Clone(zn.Records), other...)
	storeOrder := slices.Clone(recs)
	orderKey := func(rr dns.RR) []byte {
		return binary.BigEndian.AppendUint16(zone.AppendOrderKey(nil, []byte(mustWire(rr.Header().Name))), rr.Header().Rrtype)
	}
	slices.SortStableFunc(storeOrder, func(a, b dns.RR) int { return bytes.Compare(orderKey(a), orderKey(b)) })
	// The store's order with no other chain needs no tidying.
	storeOne := slices.DeleteFunc(slices.Clone(storeOrder), func(rr dns.RR) bool { return slices.Contains(other, rr) })
	shuffled := slices.Clone(recs)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

	var want []string
	for i, order := range [][]dns.RR{recs, storeOrder, storeOne, shuffled} {
		snap, err := Build(&zone.Zone{Origin: zn.Origin, Records: order})
		if err != nil {
			t.Fatal(err)
		}
		got := chainContents(snap)
		if len(got) != owners {
			t.Fatalf("order %d: %d entries in the chain, want %d", i, len(got), owners)
		}
		if i == 0 {
			want = got
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("order %d: the chain differs from the zone order's", i)
		}
	}
}

// chainContents returns each entry of a snapshot's NSEC3 chain as its
// owner, its records and its signatures as the arena keeps them,
// checking that the records are of the chain's salt.
func chainContents(z *Zone) []string {
	var out []string
	c := z.nsec3
	for i := range c.entries {
		e := &c.entries[i]
		recs := z.arena[e.off : e.off+recordsLen(z.arena, e.off, e.n)]
		sigs := z.arena[e.sigOff : e.sigOff+recordsLen(z.arena, e.sigOff, e.sigN)]
		if p, _ := parseNSEC3(recs[6:]); string(p.salt) != c.salt || e.sigN == 0 {
			return nil
		}
		out = append(out, c.ownerName(e, z.apex)+" "+string(recs)+" "+string(sigs))
	}
	return out
}
