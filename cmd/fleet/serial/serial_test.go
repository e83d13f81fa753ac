package serial

import (
	"errors"
	"testing"

	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
	"github.com/shoestring-dns/shoestring/firmware/api"
)

// TestCheck: a node behind its primary is stale with its lag (across the
// serial wrap); an unreachable primary is unknown, never current; a zone
// without a primary is checked against the highest served serial.
func TestCheck(t *testing.T) {
	states := map[string]live.State{
		"a": {Name: "a", Reached: true, Zones: []api.ZoneInfo{{Origin: "s.", ServedSerial: 4294967295}, {Origin: "f.", ServedSerial: 5}, {Origin: "u.", ServedSerial: 1}},
			Primaries: map[string][]string{"s.": {"192.0.2.1@key"}, "u.": {"192.0.2.9"}}},
		"b": {Name: "b", Reached: true, Zones: []api.ZoneInfo{{Origin: "s.", ServedSerial: 2}, {Origin: "f.", ServedSerial: 7}},
			Primaries: map[string][]string{"s.": {"192.0.2.1:53"}}},
	}
	soa := func(p, z string) (uint32, error) {
		if p == "192.0.2.1:53" && z == "s." {
			return 2, nil
		}
		return 0, errors.New("timeout")
	}
	rep := Check(states, soa)
	get := func(node, zone string) Row {
		for _, r := range rep.Rows {
			if r.Node == node && r.Zone == zone {
				return r
			}
		}
		t.Fatalf("no row %s %s", node, zone)
		return Row{}
	}
	if r := get("a", "s."); !r.Stale || r.Lag != 3 {
		t.Errorf("a s.: %+v, want stale by 3 (wrap)", r)
	}
	if r := get("b", "s."); r.Stale {
		t.Errorf("b s.: %+v", r)
	}
	if r := get("a", "f."); !r.Stale || r.Lag != 2 || r.Primary != "fleet" {
		t.Errorf("a f.: %+v", r)
	}
	if r := get("a", "u."); r.Stale || r.Reference != nil || r.Error == "" {
		t.Errorf("a u.: %+v, want unknown", r)
	}
	if rep.Stale != 2 || rep.Unknown != 1 {
		t.Errorf("stale %d unknown %d", rep.Stale, rep.Unknown)
	}
}
