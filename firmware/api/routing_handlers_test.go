package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/bfd"
	"github.com/shoestring-dns/shoestring/firmware/bgp"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/netconf"
	"github.com/shoestring-dns/shoestring/firmware/routing"
)

// fakeRouting is routing with a session, BFD, a prefix and no network.
type fakeRouting struct {
	drained []netip.Prefix
}

var pfx = netip.MustParsePrefix("192.0.2.0/24")

func (f *fakeRouting) Sessions() []bgp.PeerStatus {
	return []bgp.PeerStatus{{Name: "transit", Address: netip.MustParseAddr("198.51.100.1"), RemoteASN: 64500, State: bgp.StateEstablished, Since: time.Now().Add(-time.Hour), PrefixesSent: 1}}
}
func (f *fakeRouting) BFD() []bfd.SessionStatus {
	return []bfd.SessionStatus{{Name: "transit", Peer: netip.MustParseAddr("198.51.100.1"), State: bfd.Up, TxInterval: 300 * time.Millisecond}}
}
func (f *fakeRouting) Prefixes() []routing.Prefix {
	med := uint32(10)
	return []routing.Prefix{{
		PrefixStatus: health.PrefixStatus{Prefix: pfx, State: health.Announced, Healthy: true, Targets: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}, Maintenance: len(f.drained) > 0},
		Announce:     config.Announce{Communities: []config.Community{{ASN: 64500, Value: 7}}, LargeCommunities: []config.LargeCommunity{{ASN: 64500, Data1: 1, Data2: 2}}, MED: &med},
	}}
}
func (f *fakeRouting) Network() (netconf.Status, bool) { return netconf.Status{}, false }
func (f *fakeRouting) Maintain(drain bool, p netip.Prefix) error {
	if p.IsValid() && p != pfx {
		return health.ErrUnknownPrefix
	}
	if drain {
		f.drained = append(f.drained, p)
	} else {
		f.drained = nil
	}
	return nil
}

// TestRoutingRoutes: the routing endpoints show subsystem status in the
// API's JSON (keys as ctl and the status page read them) and drive
// maintenance.
func TestRoutingRoutes(t *testing.T) {
	f := &fakeRouting{}
	mux := http.NewServeMux()
	RoutingRoutes(mux, f, slog.New(slog.DiscardHandler))
	call := func(method, path, body string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
		return rec.Code, rec.Body.String()
	}
	code, body := call("GET", "/api/v1/routing", "")
	if code != 200 {
		t.Fatalf("routing: %d %s", code, body)
	}
	for _, want := range []string{`"name": "transit"`, `"state": "established"`, `"bfd": "Up"`, `"uptime": "1h0m0s"`, `"prefix": "192.0.2.0/24"`,
		`"communities": [`, `"64500:7"`, `"64500:1:2"`, `"med": 10`, `"targets": [`, `"tx_interval": "300ms"`} {
		if !strings.Contains(body, want) {
			t.Errorf("routing JSON lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `"network"`) {
		t.Errorf("network shown without a network section:\n%s", body)
	}
	var r Routing
	if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Sessions) != 1 || len(r.Prefixes) != 1 || len(r.BFD) != 1 {
		t.Fatalf("decoded %+v %v", r, err)
	}
	if code, body := call("GET", "/api/v1/routing/network", ""); code != 404 || !strings.Contains(body, "network section is empty") {
		t.Errorf("network: %d %s", code, body)
	}
	if code, body := call("POST", "/api/v1/routing/drain", `{"prefix":"192.0.2.1"}`); code != 404 {
		t.Errorf("drain of an address (a /32, not the /24 announced): %d %s", code, body)
	}
	if code, body := call("POST", "/api/v1/routing/drain", `{"prefix":"192.0.2.7/24"}`); code != 200 || !strings.Contains(body, `"maintenance": true`) {
		t.Errorf("drain: %d %s", code, body)
	}
	if code, body := call("POST", "/api/v1/routing/restore", ``); code != 200 || !strings.Contains(body, `"maintenance": false`) {
		t.Errorf("restore all: %d %s", code, body)
	}
	if code, _ := call("POST", "/api/v1/routing/drain", `{"prefix":"nonsense"}`); code != 400 {
		t.Errorf("drain nonsense: %d", code)
	}
}

// healthBackend is a node whose BGP part fails.
type healthBackend struct{ *pageBackend }

func (healthBackend) Health() health.Report {
	return health.Sources{Announcing: func() (bool, string) { return false, "session transit active" }}.Report()
}
func (healthBackend) Healthy() (bool, string) { return true, "ok: serving" }

// TestHealthParts: /healthz is the serving part unless parts are named;
// the status carries every part.
func TestHealthParts(t *testing.T) {
	b := healthBackend{&pageBackend{}}
	h := Handler(b, b, slog.New(slog.DiscardHandler))
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/healthz"); code != 200 || body != "ok: serving\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
	if code, body := get("/healthz?part=serving&part=zones_fresh"); code != 200 {
		t.Errorf("healthz serving, zones_fresh: %d %q", code, body)
	}
	if code, body := get("/healthz?part=all"); code != 503 || !strings.Contains(body, "bgp: session transit active") {
		t.Errorf("healthz all: %d %q", code, body)
	}
	if code, body := get("/healthz?part=bgp"); code != 503 || !strings.Contains(body, "session transit active") {
		t.Errorf("healthz bgp: %d %q", code, body)
	}
	code, body := get("/api/v1/status")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.Health == nil {
		t.Fatalf("status: %d %v %s", code, err, body)
	}
	if p, ok := st.Health.Part("bgp"); st.Health.OK || !ok || p.OK || len(st.Health.Parts) != 4 {
		t.Errorf("status health %+v", st.Health)
	}
}
