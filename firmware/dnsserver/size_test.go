package dnsserver

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// Size.Bytes is what the memory budget weighs a stored zone by at boot:
// it must not fall far short of what building the snapshot allocates
// (the node would be OOM-killed on a budget it believed kept), nor ask
// far more (zones that fit would be refused). A zone signed with NSEC3
// has as many NSEC3 owners, with their signatures, as names.
func TestSizeBytes(t *testing.T) {
	for _, nsec3 := range []bool{false, true} {
		t.Run(fmt.Sprintf("nsec3=%v", nsec3), func(t *testing.T) {
			snap, size, allocated := buildSized(t, sizeTestRecords(t, 100_000, nsec3))
			ratio := float64(size.Bytes()) / float64(allocated)
			t.Logf("%d records: Size.Bytes %.1f MiB, the build allocated %.1f MiB (%.2f×)", snap.Records(), float64(size.Bytes())/(1<<20), float64(allocated)/(1<<20), ratio)
			if ratio < 0.9 || ratio > 1.3 {
				t.Errorf("Size.Bytes is %.2f× what the build allocated; want 0.9 to 1.3", ratio)
			}
			if nsec3 && (snap.nsec3 == nil || len(snap.nsec3.entries) != 100_000) {
				t.Fatal("the NSEC3 chain was not kept whole")
			}
		})
	}
}

// sizeRec is a record as the store hands it to a Builder, and the key
// the store orders it by.
type sizeRec struct {
	owner []byte
	t     uint16
	rdata []byte
	order []byte
}

// sizeTestRecords returns a zone of hosts names with an address of each
// family, with nsec3 an NSEC3 owner for each (a made-up hash) with an
// NSEC3 record and an RRSIG of an ECDSA signature's size, in the
// store's order, as a stored zone is built at boot.
func sizeTestRecords(t *testing.T, hosts int, nsec3 bool) []sizeRec {
	apex := []byte(mustWire("size.test."))
	recs := []sizeRec{{apex, dns.TypeSOA, soaRdata(t), nil}, {apex, dns.TypeNS, []byte(mustWire("ns1.size.test.")), nil}}
	for i := range hosts {
		o := []byte(mustWire(fmt.Sprintf("host%d.size.test.", i)))
		recs = append(recs, sizeRec{o, dns.TypeA, binary.BigEndian.AppendUint32(nil, 0x0a000000|uint32(i)), nil})
		recs = append(recs, sizeRec{o, dns.TypeAAAA, append(make([]byte, 12), binary.BigEndian.AppendUint32(nil, uint32(i))...), nil})
		if !nsec3 {
			continue
		}
		h := sha1.Sum(o)
		owner := append([]byte{32}, nsec3Label.EncodeToString(h[:])...)
		owner = append(owner, apex...)
		// Hash, flags, iterations, no salt, the next hash, A and AAAA.
		rd := append([]byte{1, 0, 0, 0, 0, 20}, h[:]...)
		rd = append(rd, 0, 4, 0x40, 0, 0, 0x08)
		recs = append(recs, sizeRec{owner, dns.TypeNSEC3, rd, nil})
		sig := append(binary.BigEndian.AppendUint16(nil, dns.TypeNSEC3), make([]byte, 16)...)
		sig = append(append(sig, apex...), make([]byte, 64)...)
		recs = append(recs, sizeRec{owner, dns.TypeRRSIG, sig, nil})
	}
	for i := range recs {
		recs[i].order = binary.BigEndian.AppendUint16(zone.AppendOrderKey(nil, recs[i].owner), recs[i].t)
	}
	slices.SortStableFunc(recs, func(a, b sizeRec) int { return bytes.Compare(a.order, b.order) })
	return recs
}

// buildSized sizes a snapshot of recs (Size.Add), builds it with
// NewBuilderSized and returns it, its size and what the build allocated.
func buildSized(t *testing.T, recs []sizeRec) (*Zone, Size, int64) {
	var size Size
	for _, r := range recs {
		size.Add(r.owner, r.t, r.rdata)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b, err := NewBuilderSized("size.test.", size)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		b.Add(r.owner, r.t, 3600, r.rdata)
	}
	z, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	return z, size, int64(after.TotalAlloc - before.TotalAlloc)
}

func soaRdata(t *testing.T) []byte {
	t.Helper()
	rr, err := dns.NewRR("size.test. 3600 IN SOA ns1.size.test. h.size.test. 1 7200 3600 1209600 3600")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return buf[len("\x04size\x04test\x00")+10 : n]
}
