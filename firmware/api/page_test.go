package api

import (
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/zone"
	"github.com/shoestring-dns/shoestring/firmware/zones"
)

// pageBackend is a node as the page sees it.
type pageBackend struct {
	zones   []ZoneInfo
	o       Overview
	healthy bool
}

// The zones as package zones reports them.
func (b *pageBackend) List() ([]zones.Info, error) {
	var out []zones.Info
	for _, z := range b.zones {
		out = append(out, zones.Info{Info: store.Info{Origin: z.Origin, Serial: z.Serial, Records: z.Records, Updated: z.Updated, Source: z.Source},
			Serving: z.Serving, ServedSerial: z.ServedSerial, Problem: z.Problem})
	}
	return out, nil
}
func (b *pageBackend) Get(string) (zones.Info, *zone.Zone, error) {
	return zones.Info{}, nil, zones.ErrNotFound
}
func (b *pageBackend) PutText(string, []byte, string) (zones.Info, error) {
	return zones.Info{}, nil
}
func (b *pageBackend) Delete(string) error { return nil }
func (b *pageBackend) Status() Status {
	return Status{Name: "ams1", Location: "AMS-IX rack 4", Uptime: "1h", Zones: len(b.zones)}
}
func (b *pageBackend) Healthy() (bool, string) { return b.healthy, "" }
func (b *pageBackend) Overview() Overview      { return b.o }

func render(t *testing.T, b *pageBackend) (overall, html string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req = req.WithContext(WithCaller(req.Context(), Caller{Login: "alice@example.net", Node: "laptop", Role: RoleAdmin}))
	Handler(b, b, slog.New(slog.DiscardHandler)).ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("page: %d %s", rec.Code, rec.Body)
	}
	html = rec.Body.String()
	m := regexp.MustCompile(`<h1><span class="dot (\w+)">`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no overall colour:\n%s", html)
	}
	return m[1], html
}

func healthyNode() *pageBackend {
	now := time.Now()
	return &pageBackend{
		healthy: true,
		zones: []ZoneInfo{
			{Origin: "example.org.", Serial: 7, ServedSerial: 7, Serving: true, Records: 10, Updated: now.Add(-time.Hour)},
			{Origin: "sec.example.", Serial: 3, ServedSerial: 3, Serving: true, Records: 5, Updated: now},
		},
		o: Overview{
			Version: "v1.2.3",
			Tailnet: &Tailnet{State: "running", Name: "ams1.tail.example", IPs: []string{"100.64.0.5"}, Peers: []Peer{{Name: "fra1.tail.example", Online: true}}},
			Routing: &Routing{
				Sessions: []BGPSession{{Name: "transit", Address: "192.0.2.1", RemoteASN: 64500, State: "established", Since: now.Add(-time.Hour), PrefixesSent: 2}},
				Prefixes: []Prefix{{Prefix: "198.51.100.0/24", State: "announced", Healthy: true, Passes: 5, Query: "example.org. SOA"}},
			},
			Secondary: &SecondaryStatus{Zones: []SecondaryZone{{Origin: "sec.example.", Serial: 3, LastSuccess: now.Add(-time.Minute), ExpiresAt: now.Add(7 * 24 * time.Hour)}}},
			Dnstap:    &DnstapStatus{Target: "collector:6000", Connected: true, Sent: 10},
			Logs:      []LogLine{{Time: now, Level: "WARN", Message: "tailnet: slow"}, {Time: now, Level: "INFO", Message: "zone uploaded zone=example.org."}},
		},
	}
}

// TestPageSections: a healthy node is green and the page shows every
// section with what it is about.
func TestPageSections(t *testing.T) {
	overall, html := render(t, healthyNode())
	if overall != "green" {
		t.Errorf("healthy node is %s", overall)
	}
	for _, want := range []string{
		"AMS-IX rack 4", "ams1.tail.example", "version v1.2.3",
		`id="zones"`, "example.org.", "checked 1m0s ago, expires in 16",
		`id="bgp"`, "transit", "64500", `<span class="dot green"></span>established`,
		`id="prefixes"`, "198.51.100.0/24", "passing",
		`id="tailnet"`, "fra1.tail.example",
		`id="dnstap"`, "collector:6000: connected",
		`id="logs"`, `<span class="dot amber"></span>WARN`, "zone uploaded zone=example.org.",
		"You are alice@example.net (laptop), role admin.",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestPageColours: what turns the page amber or red.
func TestPageColours(t *testing.T) {
	for _, x := range []struct {
		name  string
		spoil func(b *pageBackend)
		want  string
	}{
		{"not healthy", func(b *pageBackend) { b.healthy = false }, "red"},
		{"health check failing", func(b *pageBackend) { b.o.Routing.Prefixes[0].Healthy = false }, "red"},
		{"every session down", func(b *pageBackend) { b.o.Routing.Sessions[0].State = "active" }, "red"},
		{"no zone served", func(b *pageBackend) { b.zones[0].Serving, b.zones[1].Serving = false, false }, "red"},
		{"one zone not served", func(b *pageBackend) { b.zones[0].Serving = false }, "amber"},
		{"secondary failing to refresh", func(b *pageBackend) { b.o.Secondary.Zones[0].Failures = 2 }, "amber"},
		{"prefix drained", func(b *pageBackend) {
			b.o.Routing.Prefixes[0].State, b.o.Routing.Prefixes[0].Maintenance = "withdrawn", true
		}, "amber"},
		{"one of two sessions down", func(b *pageBackend) {
			b.o.Routing.Sessions = append(b.o.Routing.Sessions, BGPSession{Name: "ixp", State: "idle"})
		}, "amber"},
		{"tailnet down", func(b *pageBackend) { b.o.Tailnet.State = "starting" }, "amber"},
		{"dnstap disconnected", func(b *pageBackend) { b.o.Dnstap.Connected = false }, "amber"},
		{"no BGP at all", func(b *pageBackend) { b.o.Routing = nil }, "green"},
	} {
		b := healthyNode()
		x.spoil(b)
		if got, _ := render(t, b); got != x.want {
			t.Errorf("%s: %s, want %s", x.name, got, x.want)
		}
	}
}
