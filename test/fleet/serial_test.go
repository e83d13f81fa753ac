package fleet

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/serial"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

func secZone(serial int) string {
	return fmt.Sprintf("$TTL 60\n@ IN SOA ns1 h %d 2 1 60 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.%d\n", serial, serial)
}

// TestSerialCheckStaleNode: two nodes take sec.test from two real Knot
// primaries; one primary dies and the zone moves on at the other. The
// serial check reports the node behind the dead primary stale, with its
// lag and why, and the other current.
func TestSerialCheckStaleNode(t *testing.T) {
	k1 := refserver.StartKnot(t, refserver.KnotConfig{Zones: []refserver.Zone{{Origin: "sec.test.", Text: secZone(1)}}, Editable: true})
	k2 := refserver.StartKnot(t, refserver.KnotConfig{Zones: []refserver.Zone{{Origin: "sec.test.", Text: secZone(1)}}})
	l := newLabWith(t, []inventory.Node{{Name: "fresh", Region: "eu"}, {Name: "behind", Region: "eu"}}, map[string][]string{
		"fresh":  {"-secondary", "sec.test.=" + k1.Addr},
		"behind": {"-secondary", "sec.test.=" + k2.Addr},
	})
	rows := func() map[string]serial.Row {
		var rep serial.Report
		l.call("GET", "/api/serials", nil, &rep)
		out := map[string]serial.Row{}
		for _, r := range rep.Rows {
			if r.Zone == "sec.test." {
				out[r.Node] = r
			}
		}
		return out
	}
	waitRows := func(what string, ok func(map[string]serial.Row) bool) map[string]serial.Row {
		deadline := time.Now().Add(20 * time.Second)
		for {
			rs := rows()
			if ok(rs) {
				return rs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: rows %+v", what, rs)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitRows("both current at serial 1", func(rs map[string]serial.Row) bool {
		return rs["fresh"].Serial == 1 && rs["behind"].Serial == 1 && !rs["fresh"].Stale && !rs["behind"].Stale && rs["fresh"].Reference != nil
	})
	k2.Kill()
	if err := os.WriteFile(k1.ZoneFile("sec.test."), []byte(secZone(2)), 0o644); err != nil {
		t.Fatal(err)
	}
	k1.Ctl(t, []string{"zone-reload", "sec.test."})
	rs := waitRows("behind stale after its primary died", func(rs map[string]serial.Row) bool {
		return rs["fresh"].Serial == 2 && rs["behind"].Stale
	})
	b := rs["behind"]
	if b.Lag != 1 || b.Serial != 1 || !strings.Contains(b.Error, k2.Addr) {
		t.Fatalf("behind: %+v, want serial 1, lag 1, its dead primary named", b)
	}
	if f := rs["fresh"]; f.Stale || f.Lag != 0 {
		t.Fatalf("fresh: %+v", f)
	}
	// The dashboard's exceptions name it.
	var ov struct{ Exceptions []string }
	l.call("GET", "/api/overview", nil, &ov)
	if !strings.Contains(strings.Join(ov.Exceptions, "\n"), "behind: zone sec.test. serial 1 is 1 behind") {
		t.Fatalf("exceptions: %q", ov.Exceptions)
	}
}
