package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"
)

// version returns a small zone whose content depends on serial: www moves
// address, one name comes and goes, and the NS address changes TTL.
func version(t testing.TB, serial int) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "$TTL 60\n@ SOA ns hm %d 2 3 4 5\n@ NS ns\n", serial)
	fmt.Fprintf(&b, "ns %d A 192.0.2.1\n", 60+serial%2)
	fmt.Fprintf(&b, "www A 192.0.2.%d\n", 10+serial)
	if serial%2 == 0 {
		b.WriteString("even TXT \"yes\"\n")
	}
	return b.String()
}

func TestJournalChain(t *testing.T) {
	s, _ := open(t, Options{})
	for serial := 1; serial <= 3; serial++ {
		if _, err := s.PutZone(parse(t, "example.com.", version(t, serial))); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.Journal("example.com.", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].FromSerial != 1 || ds[0].ToSerial != 2 || ds[1].FromSerial != 2 || ds[1].ToSerial != 3 {
		t.Fatalf("chain %+v", ds)
	}
	d := ds[0]
	if soa, ok := d.Removed[0].(*dns.SOA); !ok || soa.Serial != 1 {
		t.Errorf("Removed does not start with the old SOA: %v", d.Removed)
	}
	if soa, ok := d.Added[0].(*dns.SOA); !ok || soa.Serial != 2 {
		t.Errorf("Added does not start with the new SOA: %v", d.Added)
	}
	// 1->2: SOA, ns (TTL 61->60), www (.11->.12) out; SOA, ns, www, even in.
	if len(d.Removed) != 3 || len(d.Added) != 4 || d.Time.IsZero() {
		t.Errorf("delta 1->2:\nremoved %v\nadded %v", d.Removed, d.Added)
	}

	// The chain, applied to version 1 elsewhere, gives version 3.
	s2, _ := open(t, Options{})
	if _, err := s2.PutZone(parse(t, "example.com.", version(t, 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.ApplyDelta("example.com.", ds); err != nil {
		t.Fatal(err)
	}
	got, _ := s2.Zone("example.com.")
	sameRecords(t, got.Records, parse(t, "example.com.", version(t, 3)).Records)

	if ds, err := s.Journal("example.com.", 3); err != nil || ds == nil || len(ds) != 0 {
		t.Errorf("from the current serial: %v %v, want an empty chain", ds, err)
	}
	for _, from := range []uint32{0, 4, 99} {
		if _, err := s.Journal("example.com.", from); !errors.Is(err, ErrJournalGap) {
			t.Errorf("from %d: %v, want ErrJournalGap", from, err)
		}
	}

	// New content under the same serial makes the journal useless.
	same := strings.Replace(version(t, 3), "www A", "www2 A", 1)
	if _, err := s.PutZone(parse(t, "example.com.", same)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Journal("example.com.", 2); !errors.Is(err, ErrJournalGap) {
		t.Errorf("after a same-serial change: %v, want ErrJournalGap", err)
	}
}

func TestJournalTrimmedByCount(t *testing.T) {
	s, _ := open(t, Options{JournalLimit: 3})
	for serial := 1; serial <= 6; serial++ {
		if _, err := s.PutZone(parse(t, "example.com.", version(t, serial))); err != nil {
			t.Fatal(err)
		}
	}
	if ds, err := s.Journal("example.com.", 3); err != nil || len(ds) != 3 {
		t.Errorf("from 3: %d deltas, %v", len(ds), err)
	}
	if _, err := s.Journal("example.com.", 2); !errors.Is(err, ErrJournalGap) {
		t.Errorf("from 2: %v, want ErrJournalGap", err)
	}
}

func TestJournalTrimmedBySize(t *testing.T) {
	const limit = 1000
	s, _ := open(t, Options{JournalMaxBytes: limit})
	for serial := 1; serial <= 10; serial++ {
		if _, err := s.PutZone(parse(t, "example.com.", version(t, serial))); err != nil {
			t.Fatal(err)
		}
		n, size := journalSize(t, s, "example.com.")
		if size > limit || (serial > 1 && n == 0) {
			t.Fatalf("after serial %d: %d entries, %d bytes", serial, n, size)
		}
	}
	n, _ := journalSize(t, s, "example.com.")
	if ds, err := s.Journal("example.com.", uint32(10-n)); err != nil || len(ds) != n {
		t.Errorf("%d entries kept, chain from %d: %d, %v", n, 10-n, len(ds), err)
	}
	if n >= 9 {
		t.Errorf("%d entries kept under a %d byte limit", n, limit)
	}

	// A delta bigger than the limit empties the journal.
	var b strings.Builder
	b.WriteString(version(t, 11))
	for i := range 100 {
		fmt.Fprintf(&b, "big%d A 192.0.2.1\n", i)
	}
	if _, err := s.PutZone(parse(t, "example.com.", b.String())); err != nil {
		t.Fatal(err)
	}
	if n, _ := journalSize(t, s, "example.com."); n != 0 {
		t.Errorf("%d entries after an oversized delta", n)
	}
	if _, err := s.Journal("example.com.", 10); !errors.Is(err, ErrJournalGap) {
		t.Errorf("%v, want ErrJournalGap", err)
	}
}

func journalSize(t testing.TB, s *Store, origin string) (n, size int) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		return forEachPrefixed(tx.Bucket(bucketJrnl), zonePrefix(origin), func(_, v []byte) error {
			n++
			size += len(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, size
}
