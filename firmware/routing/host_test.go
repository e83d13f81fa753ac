package routing

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/shoestring-dns/shoestring/firmware/bgp"
)

// recorder is the speaker: it keeps the last set it was given.
type recorder struct{ last []bgp.Route }

func (r *recorder) SetRoutes(rs []bgp.Route) error { r.last = rs; return nil }

func prefixesOf(rs []bgp.Route) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Prefix.String())
	}
	return out
}

// TestMergedSlots: each tenant's routes are its own; closing one (its
// process died) takes out only its routes, and a monitor of the closed
// generation can no longer announce.
func TestMergedSlots(t *testing.T) {
	rec := &recorder{}
	m := &merged{out: rec, slots: map[string]*slot{}}
	route := func(p string) []bgp.Route { return []bgp.Route{{Prefix: netip.MustParsePrefix(p)}} }
	a, b := m.open("a"), m.open("b")
	a.SetRoutes(route("192.0.2.0/24"))
	b.SetRoutes(route("198.51.100.0/24"))
	if got := prefixesOf(rec.last); !slices.Equal(got, []string{"192.0.2.0/24", "198.51.100.0/24"}) {
		t.Fatalf("both: %v", got)
	}
	m.close("a")
	if got := prefixesOf(rec.last); !slices.Equal(got, []string{"198.51.100.0/24"}) {
		t.Fatalf("a closed: %v", got)
	}
	a.SetRoutes(route("192.0.2.0/24")) // the dead process's monitor, late
	if got := prefixesOf(rec.last); !slices.Equal(got, []string{"198.51.100.0/24"}) {
		t.Fatalf("stale monitor announced: %v", got)
	}
	a2 := m.open("a")
	if got := prefixesOf(rec.last); !slices.Equal(got, []string{"198.51.100.0/24"}) {
		t.Fatalf("a reopened announces before its checks pass: %v", got)
	}
	a2.SetRoutes(route("192.0.2.0/24"))
	if got := prefixesOf(rec.last); !slices.Equal(got, []string{"192.0.2.0/24", "198.51.100.0/24"}) {
		t.Fatalf("a back: %v", got)
	}
}
