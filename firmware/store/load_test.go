package store

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// Boot loading speed, logged rather than asserted: test machines are too
// noisy for thresholds. Run with -v to see the figures.

// bigZone has names h0..h<n-1>, each with an A record, plus SOA and NS.
func bigZone(origin string, n int, serial uint32) *zone.Zone {
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 300}
	}
	z := &zone.Zone{Origin: origin, Records: make([]dns.RR, 0, n+2)}
	z.Records = append(z.Records,
		&dns.SOA{Hdr: hdr(origin, dns.TypeSOA), Ns: "ns." + origin, Mbox: "hm." + origin, Serial: serial, Refresh: 7200, Retry: 3600, Expire: 1209600, Minttl: 300},
		&dns.NS{Hdr: hdr(origin, dns.TypeNS), Ns: "ns.example.net."})
	for i := range n {
		z.Records = append(z.Records, &dns.A{Hdr: hdr("h"+strconv.Itoa(i)+"."+origin, dns.TypeA), A: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i))})
	}
	return z
}

func TestLoadTimingBigZone(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	s, path := open(t, Options{})
	z := bigZone("big.example.", 100000, 1)
	t0 := time.Now()
	if _, err := s.PutZone(z); err != nil {
		t.Fatal(err)
	}
	put := time.Since(t0)

	z2 := bigZone("big.example.", 100000, 2)
	z2.Records[1000].(*dns.A).A = net.IPv4(192, 0, 2, 1)
	t0 = time.Now()
	if _, err := s.PutZone(z2); err != nil {
		t.Fatal(err)
	}
	put2 := time.Since(t0)
	s.Close()

	t0 = time.Now()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opened := time.Since(t0)
	n := 0
	err = s.ForEachZone(func(z *zone.Zone, _ Info) error {
		n += len(z.Records)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	loaded := time.Since(t0) - opened
	t.Logf("100k-name zone: put %v, re-put with 2 changed RRsets %v; open %v, ForEachZone %v (%d records), %d KiB in use",
		put.Round(time.Millisecond), put2.Round(time.Millisecond), opened.Round(time.Millisecond), loaded.Round(time.Millisecond), n, inUse(t, s)/1024)
}

func TestLoadTimingManyZones(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	const zones = 10000
	s, path := open(t, Options{})
	// Filled in batches of zones per transaction to keep the test
	// quick; each zone is written just as PutZone would.
	t0 := time.Now()
	buf := make([]byte, packBufSize)
	for b := 0; b < zones; b += 1000 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i := b; i < b+1000; i++ {
				z := bigZone("z"+strconv.Itoa(i)+".example.", 5, 1)
				var rs []record
				for _, rr := range z.Records {
					r, err := fromRR(rr, buf)
					if err != nil {
						return err
					}
					rs = append(rs, r)
				}
				if _, err := s.writeTx(tx, z.Origin, 1, sliceSets(buildSets(rs)), "api", nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fill := time.Since(t0)
	s.Close()

	t0 = time.Now()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opened := time.Since(t0)
	n, records := 0, 0
	err = s.ForEachZone(func(z *zone.Zone, _ Info) error {
		n++
		records += len(z.Records)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	loaded := time.Since(t0) - opened
	if n != zones {
		t.Fatalf("%d zones loaded", n)
	}
	t1 := time.Now()
	list, err := s.List()
	if err != nil || len(list) != zones {
		t.Fatal(len(list), err)
	}
	listed := time.Since(t1)
	t.Logf("%d zones of 7 records: fill %v; open %v, ForEachZone %v (%d records), List %v, %d KiB in use",
		zones, fill.Round(time.Millisecond), opened.Round(time.Millisecond), loaded.Round(time.Millisecond), records, listed.Round(time.Millisecond), inUse(t, s)/1024)
}

// inUse is the part of the file holding data: bbolt grows the file in
// big steps, so its size says little.
func inUse(t *testing.T, s *Store) int64 {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Size() - int64(s.db.Stats().FreePageN*s.db.Info().PageSize)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
