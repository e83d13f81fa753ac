package store

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// Visit sees exactly the records Commit keeps, in the order ReadZone
// reads them back (a snapshot is sized from it instead of from a first
// read of the store): duplicates dropped, names in the store's order,
// owners as written.
func TestImportVisitMatchesReadZone(t *testing.T) {
	forSpillModes(t, func(t *testing.T, opts Options) {
		s, _ := open(t, opts)
		text := `$ORIGIN v.test.
$TTL 60
@ SOA ns1 h 1 60 10 600 60
@ NS ns1
ns1 A 192.0.2.53
b A 192.0.2.2
a.b AAAA 2001:db8::1
WWW A 192.0.2.1
www A 192.0.2.1
www TXT "x"
www A 192.0.2.3
`
		visited, read := importVisitRead(t, s, "v.test.", text)
		if len(read) != 8 { // the second 192.0.2.1 at www is a duplicate
			t.Errorf("ReadZone: %d records, want 8:\n%s", len(read), strings.Join(read, "\n"))
		}
		if strings.Join(visited, "\n") != strings.Join(read, "\n") {
			t.Errorf("Visit saw\n%s\nReadZone read\n%s", strings.Join(visited, "\n"), strings.Join(read, "\n"))
		}
		if !bytes.Contains([]byte(strings.Join(visited, "\n")), []byte(`"\x03WWW\x01v\x04test\x00" 1`)) {
			t.Errorf("owner not as written:\n%s", strings.Join(visited, "\n"))
		}
	})
}

// Commit sorts records on a 16-byte prefix of their keys before whole
// keys: names that tie on it (long common starts), names shorter than
// it, escapes, types above 255 at a name with children and a name's
// records in arrival order must all be visited (and so checked) in the
// store's key order, the order bbolt keeps and ReadZone reads.
func TestImportOrderBeyondPrefix(t *testing.T) {
	forSpillModes(t, func(t *testing.T, opts Options) {
		s, _ := open(t, opts)
		text := `$ORIGIN o.test.
$TTL 60
@ SOA ns1 h 1 60 10 600 60
@ NS ns1
ns1 A 192.0.2.53
averyveryverylongcommonstart-b A 192.0.2.2
averyveryverylongcommonstart-a A 192.0.2.1
averyveryverylongcommonstart A 192.0.2.3
averyveryverylongcommonstart-a TXT "t"
x.averyveryverylongcommonstart-a A 192.0.2.4
a A 192.0.2.5
\000 A 192.0.2.6
\001x A 192.0.2.7
host10 A 10.0.0.10
host1 A 10.0.0.1
host1 CAA 0 issue "ca.test"
z.host1 A 10.0.0.2
host100 A 10.0.0.100
host1 TXT "second"
host1 TXT "first-read-later"
abcdefghja A 192.0.2.8
abcdefghiz A 192.0.2.9
`
		visited, read := importVisitRead(t, s, "o.test.", text)
		if len(read) != 20 {
			t.Fatalf("read %d records, want 20", len(read))
		}
		if strings.Join(visited, "\n") != strings.Join(read, "\n") {
			t.Errorf("Visit saw\n%s\nReadZone read\n%s", strings.Join(visited, "\n"), strings.Join(read, "\n"))
		}
		// A set's records keep the order they were read in.
		var txt []string
		for _, r := range read {
			if strings.HasPrefix(r, `"\x05host1\x01o\x04test\x00" 16 `) {
				txt = append(txt, r)
			}
		}
		if len(txt) != 2 || !strings.Contains(txt[0], fmt.Sprintf("%x", "second")) {
			t.Errorf("host1 TXT not in arrival order: %v", txt)
		}
	})
}

// importVisitRead imports text as origin and returns the records Visit
// saw and those ReadZone then read back, each as "owner type rdata".
func importVisitRead(t *testing.T, s *Store, origin, text string) (visited, read []string) {
	t.Helper()
	im, err := s.NewImport(origin, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := zone.ParseStream(strings.NewReader(text), origin, origin+"zone", "", im.Add); err != nil {
		t.Fatal(err)
	}
	im.Visit(func(owner []byte, typ uint16, rdata []byte) {
		visited = append(visited, fmt.Sprintf("%q %d %x", owner, typ, rdata))
	})
	if _, err := im.Commit("file"); err != nil {
		t.Fatal(err)
	}
	err = s.ReadZone(origin, func(Info) {}, func(owner []byte, typ uint16, _ uint32, rdata []byte) {
		read = append(read, fmt.Sprintf("%q %d %x", owner, typ, rdata))
	})
	if err != nil {
		t.Fatal(err)
	}
	return visited, read
}
