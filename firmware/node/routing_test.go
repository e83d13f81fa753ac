package node

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
)

// startRoutingNode runs a node without BGP on loopback and returns it with
// its API client. (The routing with BGP, BFD and networking runs in
// test/lab, which needs root.)
func startRoutingNode(t *testing.T) (*Node, *api.Client) {
	t.Helper()
	cfg := &config.Config{DataDir: t.TempDir()}
	cfg.DNS.Listen = []config.HostPort{"127.0.0.1:0"}
	cfg.Management.Listen = "127.0.0.1:0"
	cfg.Node.Name = "rt"
	cfg.SetDefaults()
	ready := make(chan string, 1)
	n := New(Options{
		Config:  cfg,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnReady: func(_ []string, h string) { ready <- h },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case h := <-ready:
		return n, api.NewClient(h)
	case err := <-done:
		t.Fatalf("node exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("node not ready after 10s")
	}
	return nil, nil
}

// TestHealthyFollowsHealthLoop: /healthz (which feeds the hardware
// watchdog) reports the health loop's verdict: healthy while the server
// answers its own queries, unhealthy within a second once it stops.
func TestHealthyFollowsHealthLoop(t *testing.T) {
	n, c := startRoutingNode(t)
	if err := c.Health(); err != nil {
		t.Fatalf("healthz: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // a round or so of checks
	if ok, why := n.Healthy(); !ok {
		t.Fatalf("Healthy() = false, %s", why)
	}
	n.dns.Close()
	start := time.Now()
	for {
		ok, why := n.Healthy()
		if !ok {
			t.Logf("unhealthy %v after the server stopped: %s", time.Since(start).Round(time.Millisecond), why)
			if !strings.Contains(why, "not answering") {
				t.Errorf("reason %q", why)
			}
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("still healthy 2 s after the DNS server stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	err := c.Health()
	var ae *api.APIError
	if !asAPIError(err, &ae) || ae.Code != http.StatusServiceUnavailable {
		t.Errorf("healthz with the server down: %v", err)
	}
}

func asAPIError(err error, out **api.APIError) bool {
	ae, ok := err.(*api.APIError)
	if ok {
		*out = ae
	}
	return ok
}

// TestRoutingAPIWithoutBGP: a node without BGP or networking still answers
// the routing endpoints, with nothing in them.
func TestRoutingAPIWithoutBGP(t *testing.T) {
	_, c := startRoutingNode(t)
	r, err := c.Routing()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sessions) != 0 || len(r.Prefixes) != 0 || r.Network != nil {
		t.Errorf("routing %+v", r)
	}
	if ps, err := c.Drain(""); err != nil || len(ps) != 0 {
		t.Errorf("drain all: %v %v", ps, err)
	}
	if _, err := c.Drain("192.0.2.0/24"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("drain of a prefix not announced: %v", err)
	}
	if _, err := c.Drain("not a prefix"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("drain of garbage: %v", err)
	}
	if _, err := c.Network(); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("network without a network section: %v", err)
	}
}

// TestExpiredZones: the node's health (its zones_fresh part, which the
// prefix checks share) sees a zone the secondary service marks expired,
// and the watchdog's part (serving) does not change for it.
func TestExpiredZones(t *testing.T) {
	n, c := startRoutingNode(t)
	for _, o := range []string{"a.test.", "b.test."} {
		if _, err := c.PutZone(o, []byte(zoneText(o, 1, "192.0.2.1"))); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.dns.ExpiredZones(); len(got) != 0 {
		t.Fatalf("expired %v", got)
	}
	if h := n.Health(); !h.ZonesFresh.OK {
		t.Fatalf("zones_fresh: %+v", h.ZonesFresh)
	}
	n.dns.Put(n.dns.Zone("b.test.").WithExpired(true))
	if got := n.dns.ExpiredZones(); !slices.Equal(got, []string{"b.test."}) {
		t.Errorf("expired %v, want [b.test.]", got)
	}
	h := n.Health()
	if h.ZonesFresh.OK || !strings.Contains(h.ZonesFresh.Why, "b.test.") {
		t.Errorf("zones_fresh with b.test. expired: %+v", h.ZonesFresh)
	}
	if ok, why := n.Healthy(); !ok {
		t.Errorf("Healthy (serving) = false for an expired zone: %s", why)
	}
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Health == nil || st.Health.OK {
		t.Fatalf("status health %+v", st.Health)
	}
	// The peak (VmHWM, read after the RSS) is never below the RSS.
	if st.Memory.RSS == 0 || st.Memory.PeakRSS < st.Memory.RSS {
		t.Errorf("status memory: rss %d, peak_rss %d", st.Memory.RSS, st.Memory.PeakRSS)
	}
	if p, ok := st.Health.Part("zones_fresh"); !ok || p.OK {
		t.Errorf("status zones_fresh %+v", p)
	}
	if p, ok := st.Health.Part("serving"); !ok || !p.OK {
		t.Errorf("status serving %+v", p)
	}
	if err := c.Health(); err != nil {
		t.Errorf("healthz (serving) with an expired zone: %v", err)
	}
}

// TestOverviewAndMetrics: the overview and every metrics scrape read the
// subsystems directly: routing (without BGP: no sessions), the health
// parts, no tailnet in dev mode, recent log lines.
func TestOverviewAndMetrics(t *testing.T) {
	n, c := startRoutingNode(t)
	time.Sleep(300 * time.Millisecond) // a round or so of checks
	o, err := c.Overview()
	if err != nil {
		t.Fatal(err)
	}
	if o.Routing == nil || len(o.Routing.Sessions) != 0 || o.Tailnet != nil || o.Secondary == nil || len(o.Logs) == 0 {
		t.Errorf("overview %+v", o)
	}
	if o.Health == nil || !o.Health.OK || len(o.Health.Parts) != 4 {
		t.Errorf("overview health %+v", o.Health)
	}
	if direct := n.Overview(); direct.Health == nil || len(direct.Logs) == 0 {
		t.Errorf("Overview() %+v", direct)
	}
	m, err := c.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`shoestring_health_ok{part="serving"} 1`, `shoestring_health_ok{part="bgp"} 1`, `shoestring_bgp_configured 0`, `shoestring_ready 1`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(m), "shoestring_tailnet_up") {
		t.Error("tailnet metric on a node without a tailnet")
	}
}
