package dnsserver

import (
	"bytes"
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
// far more (zones that fit would be refused).
func TestSizeBytes(t *testing.T) {
	const hosts = 100_000
	type rec struct {
		owner []byte
		t     uint16
		rdata []byte
	}
	recs := []rec{
		{[]byte(mustWire("size.test.")), dns.TypeSOA, soaRdata(t)},
		{[]byte(mustWire("size.test.")), dns.TypeNS, []byte(mustWire("ns1.size.test."))},
	}
	for i := range hosts {
		o := []byte(mustWire(fmt.Sprintf("host%d.size.test.", i)))
		recs = append(recs, rec{o, dns.TypeA, binary.BigEndian.AppendUint32(nil, 0x0a000000|uint32(i))})
		recs = append(recs, rec{o, dns.TypeAAAA, append(make([]byte, 12), binary.BigEndian.AppendUint32(nil, uint32(i))...)})
	}
	// In the store's order, as a stored zone is built at boot.
	slices.SortStableFunc(recs, func(a, b rec) int {
		return bytes.Compare(binary.BigEndian.AppendUint16(zone.AppendOrderKey(nil, a.owner), a.t),
			binary.BigEndian.AppendUint16(zone.AppendOrderKey(nil, b.owner), b.t))
	})
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
	allocated := int64(after.TotalAlloc - before.TotalAlloc)
	runtime.KeepAlive(z)
	ratio := float64(size.Bytes()) / float64(allocated)
	t.Logf("%d records: Size.Bytes %.1f MiB, the build allocated %.1f MiB (%.2f×)", len(recs), float64(size.Bytes())/(1<<20), float64(allocated)/(1<<20), ratio)
	if ratio < 0.9 || ratio > 1.3 {
		t.Errorf("Size.Bytes is %.2f× what the build allocated; want 0.9 to 1.3", ratio)
	}
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
