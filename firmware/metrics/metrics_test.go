package metrics

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
)

func find(t *testing.T, fams []*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	t.Helper()
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, want := range labels {
				k, v, _ := strings.Cut(want, "=")
				ok := false
				for _, l := range m.GetLabel() {
					ok = ok || (l.GetName() == k && l.GetValue() == v)
				}
				if !ok {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// TestNodeMetrics: every source ends up in the exposition, consistently
// enough for the registry to accept it.
func TestNodeMetrics(t *testing.T) {
	now := time.Now()
	srv := dnsserver.New(dnsserver.Config{})
	r := New(Sources{
		DNS:      srv.QueryMetrics,
		DNSStats: srv.Stats,
		Zones: func() ([]api.ZoneInfo, error) {
			return []api.ZoneInfo{
				{Origin: "example.org.", Serial: 42, Records: 9, Serving: true, Updated: now.Add(-time.Minute)},
				{Origin: "sec.example.", Serial: 3, Records: 2, Serving: true, Problem: "refresh failing"},
			}, nil
		},
		Overview: func() api.Overview {
			return api.Overview{
				Routing: &api.Routing{
					Sessions: []api.BGPSession{{Name: "transit", Address: "192.0.2.1", State: "established", PrefixesSent: 2, RoutesReceived: 900000}, {Name: "ixp", Address: "192.0.2.9", State: "active"}},
					Prefixes: []api.Prefix{{Prefix: "198.51.100.0/24", State: "announced", Healthy: true}, {Prefix: "203.0.113.0/24", State: "withdrawn", Fails: 4}},
				},
				Secondary: &api.SecondaryStatus{
					Zones:    []api.SecondaryZone{{Origin: "sec.example.", AXFRs: 1, IXFRs: 5, Failures: 2, LastSuccess: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)}},
					Outbound: api.OutboundStatus{AXFRs: 3, Refused: 1},
				},
				Tailnet: &api.Tailnet{State: "running"},
				Health: &api.Health{Parts: []api.HealthPart{
					{Name: "serving", OK: true}, {Name: "zones_fresh", OK: true}, {Name: "bgp", Why: "session ixp active"}, {Name: "management", OK: true},
				}},
				Dnstap: &api.DnstapStatus{Connected: true, Sent: 100, Dropped: 7},
			}
		},
		Ready: func() bool { return true },
	}, Build{Version: "v9", Slot: "b"})

	fams, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, x := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"shoestring_build_info", []string{"version=v9", "slot=b"}, 1},
		{"shoestring_ready", nil, 1},
		{"shoestring_zone_serial", []string{"zone=example.org."}, 42},
		{"shoestring_zone_problem", []string{"zone=sec.example."}, 1},
		{"shoestring_bgp_configured", nil, 1},
		{"shoestring_bgp_session_up", []string{"peer=transit"}, 1},
		{"shoestring_bgp_session_up", []string{"peer=ixp"}, 0},
		{"shoestring_bgp_session_state", []string{"peer=ixp", "state=active"}, 1},
		{"shoestring_bgp_prefixes_announced", []string{"peer=transit"}, 2},
		{"shoestring_bgp_routes_received", []string{"peer=transit"}, 900000},
		{"shoestring_bgp_prefix_announced", []string{"prefix=203.0.113.0/24"}, 0},
		{"shoestring_health_check_ok", []string{"prefix=198.51.100.0/24"}, 1},
		{"shoestring_health_check_consecutive_failures", []string{"prefix=203.0.113.0/24"}, 4},
		{"shoestring_secondary_transfers_total", []string{"zone=sec.example.", "kind=ixfr"}, 5},
		{"shoestring_secondary_refresh_failures", []string{"zone=sec.example."}, 2},
		{"shoestring_outbound_transfers_total", []string{"result=refused"}, 1},
		{"shoestring_tailnet_up", nil, 1},
		{"shoestring_dnstap_dropped_total", nil, 7},
		{"shoestring_health_ok", []string{"part=serving"}, 1},
		{"shoestring_health_ok", []string{"part=bgp"}, 0},
	} {
		got, ok := find(t, fams, x.name, x.labels...)
		if !ok || got != x.want {
			t.Errorf("%s%v = %v (found %v), want %v", x.name, x.labels, got, ok, x.want)
		}
	}
	if v, ok := find(t, fams, "shoestring_zone_expires_in_seconds", "zone=sec.example."); !ok || v < 3500 || v > 3600 {
		t.Errorf("expires in %v", v)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes"} {
		if _, ok := find(t, fams, name); !ok {
			t.Errorf("no %s", name)
		}
	}
}

// TestReference: every series the node can export is in README.md, and
// the reference names no series that does not exist.
func TestReference(t *testing.T) {
	doc, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(shoestring_[a-z0-9_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	exported := map[string]bool{}
	d := reflect.ValueOf(newDescs()).Elem()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for i := 0; i < d.NumField(); i++ {
		f := d.Field(i) // unexported: read through its address
		desc := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(*prometheus.Desc)
		m := fqName.FindStringSubmatch(desc.String())
		if m == nil {
			t.Fatalf("descs.%s: no name in %v", d.Type().Field(i).Name, desc)
		}
		exported[m[1]] = true
	}
	fams, err := New(Sources{}, Build{}).Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	// A host's own series about its tenants (tenants.go).
	hostFams, err := Relabel(nil, map[string]error{"t": errors.New("down")})
	if err != nil {
		t.Fatal(err)
	}
	fams = append(fams, hostFams...)
	for _, f := range fams {
		name := f.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue // documented as a group
		}
		exported[name] = true
	}
	for name := range exported {
		if !documented[name] {
			t.Errorf("%s is exported but not in README.md", name)
		}
	}
	for name := range documented {
		if !exported[name] {
			t.Errorf("README.md documents %s, which is not exported", name)
		}
	}
}
