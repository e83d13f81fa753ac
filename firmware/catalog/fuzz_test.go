package catalog

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// packRecords is the wire form a transfer brings records in: one record
// after another, uncompressed.
func packRecords(rrs []dns.RR) []byte {
	var out []byte
	for _, rr := range rrs {
		buf := make([]byte, dns.Len(rr)+64)
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			continue
		}
		out = append(out, buf[:n]...)
	}
	return out
}

// FuzzParse builds a catalog zone from the records in the input (wire
// form, as a transfer brings them; a record that does not unpack ends the
// list): a zone whose first record is its SOA, or else cat.test. with a
// fixed SOA and NS first, and parses it. Parsing
// never panics; an accepted catalog lists only valid, canonical member
// names, each once, with the IDs found in the zone; the result does not
// depend on the order of the records (RFC 9432 catalogs are sets), and
// the members, built again into a catalog with Build, parse back to the
// same zones.
func FuzzParse(f *testing.F) {
	f.Add(packRecords(Build("cat.test.", 1, []string{"one.example.", "two.example."}).Records))
	z, err := zone.Parse(strings.NewReader(head+`version TXT "2"
a1.zones PTR one.example.
group.a1.zones TXT "eu"
coo.a1.zones PTR other.cat.
b2.zones PTR TWO.example.
c3.zones PTR three.example.
c3.zones PTR four.example.
d4.zones PTR one.example.
ext.b2.zones TXT "ignored"
`), "cat.test.", "cat", "")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(packRecords(z.Records))
	if ents, err := os.ReadDir(filepath.Join("..", "..", "test", "testdata", "fuzz", "FuzzCatalog")); err == nil {
		for _, e := range ents {
			if b, err := os.ReadFile(filepath.Join("..", "..", "test", "testdata", "fuzz", "FuzzCatalog", e.Name())); err == nil && !strings.HasSuffix(e.Name(), ".md") {
				f.Add(b)
			}
		}
	}
	base := Build("cat.test.", 7, nil).Records[:2] // SOA, NS
	f.Fuzz(func(t *testing.T, data []byte) {
		var rrs []dns.RR
		for off := 0; off < len(data) && len(rrs) < 10000; {
			rr, next, err := dns.UnpackRR(data, off)
			if err != nil || rr == nil || next <= off {
				break
			}
			rrs, off = append(rrs, rr), next
		}
		// A catalog as transferred (the captured ones) starts with its
		// SOA; other inputs get cat.test.'s SOA and NS.
		origin, serial := "cat.test.", uint32(7)
		if soa, ok := first(rrs).(*dns.SOA); ok {
			origin, serial = zone.Canonical(soa.Hdr.Name), soa.Serial
		} else {
			rrs = append(append([]dns.RR(nil), base...), rrs...)
		}
		c, err := Parse(&zone.Zone{Origin: origin, Records: rrs})
		// The same records backwards.
		rev := append([]dns.RR(nil), rrs...)
		for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
			rev[i], rev[j] = rev[j], rev[i]
		}
		c2, err2 := Parse(&zone.Zone{Origin: origin, Records: rev})
		if (err == nil) != (err2 == nil) {
			t.Fatalf("order changes the verdict: %v / %v", err, err2)
		}
		if err != nil {
			if c != nil {
				t.Fatal("refused with a catalog")
			}
			return
		}
		if c.Origin != origin || c.Serial != serial {
			t.Fatalf("catalog %s serial %d", c.Origin, c.Serial)
		}
		if !reflect.DeepEqual(memberSet(c), memberSet(c2)) {
			t.Fatalf("order changes the members:\n%v\n%v", memberSet(c), memberSet(c2))
		}
		ids := map[string]bool{}
		var names []string
		for name, m := range c.Members {
			if name != m.Zone || name != zone.Canonical(name) || name == "." {
				t.Fatalf("member %q listed as %q", m.Zone, name)
			}
			if _, ok := dns.IsDomainName(name); !ok {
				t.Fatalf("member %q is not a domain name", name)
			}
			if ids[m.ID] {
				t.Fatalf("ID %s used twice", m.ID)
			}
			ids[m.ID] = true
			if !hasPTR(rrs, m.ID+".zones."+origin, m.Zone) {
				t.Fatalf("member %s with ID %s is not in the zone", m.Zone, m.ID)
			}
			names = append(names, name)
		}
		sort.Strings(names)
		back, err := Parse(Build(origin, 8, names))
		if err != nil {
			t.Fatalf("built again: %v", err)
		}
		var got []string
		for name := range back.Members {
			got = append(got, name)
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, names) || len(back.Problems) != 0 {
			t.Fatalf("built again: %v, want %v (problems %v)", got, names, back.Problems)
		}
	})
}

func first(rrs []dns.RR) dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	return rrs[0]
}

// memberSet is the members with their properties, groups sorted (their
// order follows the records').
func memberSet(c *Catalog) map[string]Member {
	out := map[string]Member{}
	for k, m := range c.Members {
		m.Groups = append([]string(nil), m.Groups...)
		sort.Strings(m.Groups)
		if len(m.Groups) == 0 {
			m.Groups = nil
		}
		out[k] = m
	}
	return out
}

func hasPTR(rrs []dns.RR, owner, target string) bool {
	for _, rr := range rrs {
		if p, ok := rr.(*dns.PTR); ok && zone.Canonical(p.Hdr.Name) == owner && zone.Canonical(p.Ptr) == target {
			return true
		}
	}
	return false
}
