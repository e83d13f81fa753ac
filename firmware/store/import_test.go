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
	s, _ := open(t, Options{})
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
	im, err := s.NewImport("v.test.", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := zone.ParseStream(strings.NewReader(text), "v.test.", "v.zone", "", im.Add); err != nil {
		t.Fatal(err)
	}
	var visited []string
	im.Visit(func(owner []byte, typ uint16, rdata []byte) {
		visited = append(visited, fmt.Sprintf("%q %d %x", owner, typ, rdata))
	})
	if _, err := im.Commit("file"); err != nil {
		t.Fatal(err)
	}
	var read []string
	err = s.ReadZone("v.test.", func(Info) {}, func(owner []byte, typ uint16, _ uint32, rdata []byte) {
		read = append(read, fmt.Sprintf("%q %d %x", owner, typ, rdata))
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != 8 { // the second 192.0.2.1 at www is a duplicate
		t.Errorf("ReadZone: %d records, want 8:\n%s", len(read), strings.Join(read, "\n"))
	}
	if strings.Join(visited, "\n") != strings.Join(read, "\n") {
		t.Errorf("Visit saw\n%s\nReadZone read\n%s", strings.Join(visited, "\n"), strings.Join(read, "\n"))
	}
	if !bytes.Contains([]byte(strings.Join(visited, "\n")), []byte(`"\x03WWW\x01v\x04test\x00" 1`)) {
		t.Errorf("owner not as written:\n%s", strings.Join(visited, "\n"))
	}
}
