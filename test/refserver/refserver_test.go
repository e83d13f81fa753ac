package refserver

import (
	"testing"
	"time"
)

const testZone = `$ORIGIN example.test.
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.2
`

// TestKnot starts Knot on a zone given as text, from a plain config and
// from an editable one, and changes the zone through knotc.
func TestKnot(t *testing.T) {
	for _, editable := range []bool{false, true} {
		k := StartKnot(t, KnotConfig{Zones: []Zone{{Origin: "example.test.", Text: testZone}}, Journal: true, Editable: editable})
		if editable {
			k.Ctl(t, []string{"zone-begin", "example.test."}, []string{"zone-set", "example.test.", "new", "300", "A", "192.0.2.3"},
				[]string{"zone-commit", "example.test."})
		}
		k.Stop(5 * time.Second)
		if !k.Exited() {
			t.Fatal("knot still running after Stop")
		}
	}
}
