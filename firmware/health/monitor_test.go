package health

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/bgp"
)

// recorder stands in for the speaker at the package boundary (the speaker
// against BIRD and GoBGP is tested in test/lab): it keeps every desired
// state it is given, with the time.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

type call struct {
	at     time.Time
	routes []bgp.Route
}

func (r *recorder) SetRoutes(rs []bgp.Route) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{time.Now(), slices.Clone(rs)})
	return nil
}

// last returns the newest desired state as "prefix" or "prefix gshut".
func (r *recorder) last() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return nil
	}
	return describe(r.calls[len(r.calls)-1].routes)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// waitFor waits until the desired state is want and returns when it was
// set.
func (r *recorder) waitFor(t *testing.T, timeout time.Duration, want ...string) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		if n := len(r.calls); n > 0 && slices.Equal(describe(r.calls[n-1].routes), want) {
			at := r.calls[n-1].at
			r.mu.Unlock()
			return at
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("routes %q, want %q within %v", r.last(), want, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func describe(rs []bgp.Route) []string {
	out := []string{}
	for _, r := range rs {
		s := r.Prefix.String()
		if r.GracefulShutdown {
			s += " gshut"
		}
		out = append(out, s)
	}
	return out
}

var (
	pfxA = netip.MustParsePrefix("192.0.2.53/32")
	pfxB = netip.MustParsePrefix("2001:db8:53::/48")
	tgtA = netip.MustParseAddrPort("192.0.2.53:53")
	tgtB = netip.MustParseAddrPort("[2001:db8:53::53]:53")
)

// scripted is a probe whose verdict per target the test sets.
type scripted struct {
	mu    sync.Mutex
	fail  map[netip.AddrPort]error
	calls atomic.Int64
}

func (s *scripted) set(t netip.AddrPort, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail == nil {
		s.fail = map[netip.AddrPort]error{}
	}
	s.fail[t] = err
}

func (s *scripted) probe(_ context.Context, t netip.AddrPort, _ Query) error {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail[t]
}

func scriptedMonitor(t *testing.T, cfg Config) (*Monitor, *recorder, *scripted) {
	t.Helper()
	sc := &scripted{}
	rec := &recorder{}
	cfg.Probe = sc.probe
	if cfg.Prefixes == nil {
		cfg.Prefixes = []Prefix{
			{Route: bgp.Route{Prefix: pfxA}, Targets: []netip.AddrPort{tgtA}},
			{Route: bgp.Route{Prefix: pfxB, Prepend: 2}, Targets: []netip.AddrPort{tgtB}},
		}
	}
	m, err := New(cfg, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m, rec, sc
}

func rounds(m *Monitor, n int) {
	for range n {
		m.round(context.Background())
	}
}

func state(t *testing.T, m *Monitor, p netip.Prefix) PrefixStatus {
	t.Helper()
	for _, s := range m.Status() {
		if s.Prefix == p {
			return s
		}
	}
	t.Fatalf("no status for %v", p)
	return PrefixStatus{}
}

// TestRiseFall: nothing is announced before Rise passing rounds; Fall
// failing rounds in a row withdraw; fewer do not, and neither does a
// pattern that never fails Fall times running (hysteresis).
func TestRiseFall(t *testing.T) {
	m, rec, sc := scriptedMonitor(t, Config{Rise: 5, Fall: 3})
	rounds(m, 4)
	if rec.count() != 0 {
		t.Fatalf("announced before rise: %q", rec.last())
	}
	if s := state(t, m, pfxA); s.State != Withdrawn || !strings.Contains(s.Reason, "starting: 4 of 5") {
		t.Errorf("before rise: %+v", s)
	}
	rounds(m, 1)
	if got := rec.last(); !slices.Equal(got, []string{pfxA.String(), pfxB.String()}) {
		t.Fatalf("after rise: %q", got)
	}

	boom := errors.New("answered REFUSED")
	for range 20 { // fail, fail, pass: never three in a row
		sc.set(tgtA, boom)
		rounds(m, 2)
		sc.set(tgtA, nil)
		rounds(m, 1)
	}
	if s := state(t, m, pfxA); s.State != Announced {
		t.Fatalf("flapping check withdrew the prefix: %+v", s)
	}
	if n := rec.count(); n != 1 {
		t.Errorf("speaker told %d times; want once", n)
	}

	sc.set(tgtA, boom)
	rounds(m, 2)
	if s := state(t, m, pfxA); s.State != Announced || !strings.Contains(s.Reason, "2 of 3 failures") {
		t.Errorf("after 2 failures: %+v", s)
	}
	rounds(m, 1)
	if got := rec.last(); !slices.Equal(got, []string{pfxB.String()}) {
		t.Fatalf("after 3 failures: %q", got)
	}
	s := state(t, m, pfxA)
	if s.State != Withdrawn || !strings.Contains(s.Reason, "192.0.2.53:53") || !strings.Contains(s.Reason, "REFUSED") {
		t.Errorf("withdrawn status %+v", s)
	}

	sc.set(tgtA, nil)
	rounds(m, 4)
	if s := state(t, m, pfxA); s.State != Withdrawn || !strings.Contains(s.Reason, "recovering: 4 of 5") {
		t.Errorf("recovering: %+v", s)
	}
	sc.set(tgtA, boom) // a failure restarts the count
	rounds(m, 1)
	sc.set(tgtA, nil)
	rounds(m, 4)
	if state(t, m, pfxA).State != Withdrawn {
		t.Error("announced without 5 passes in a row")
	}
	rounds(m, 1)
	if got := rec.last(); !slices.Equal(got, []string{pfxA.String(), pfxB.String()}) {
		t.Fatalf("after recovery: %q", got)
	}
	// The route keeps its attributes.
	rec.mu.Lock()
	if r := rec.calls[len(rec.calls)-1].routes[1]; r.Prepend != 2 {
		t.Errorf("route %+v lost its prepend", r)
	}
	rec.mu.Unlock()
}

// TestExpiredZoneWithdraws: any zone past its SOA expire withdraws every
// prefix, and the status names it.
func TestExpiredZoneWithdraws(t *testing.T) {
	var expired atomic.Value
	expired.Store([]string(nil))
	m, rec, _ := scriptedMonitor(t, Config{Rise: 1, Fall: 1, Expired: func() []string { return expired.Load().([]string) }})
	rounds(m, 1)
	if len(rec.last()) != 2 {
		t.Fatalf("routes %q", rec.last())
	}
	expired.Store([]string{"example.org."})
	rounds(m, 1)
	if got := rec.last(); len(got) != 0 {
		t.Fatalf("routes %q with an expired zone", got)
	}
	if s := state(t, m, pfxB); !strings.Contains(s.Reason, "example.org. past its SOA expire") {
		t.Errorf("status %+v", s)
	}
	if ok, why := m.Alive(); !ok {
		t.Errorf("an expired zone made the node not alive: %s", why)
	}
}

// TestMaintenance: drain announces with GRACEFUL_SHUTDOWN for the drain
// wait, then withdraws until restore; restore announces at once.
func TestMaintenance(t *testing.T) {
	m, rec, _ := scriptedMonitor(t, Config{Rise: 1, Fall: 1, DrainWait: 300 * time.Millisecond})
	rounds(m, 1)
	if err := m.Drain(netip.MustParsePrefix("198.51.100.0/24")); !errors.Is(err, ErrUnknownPrefix) {
		t.Errorf("drain of an unknown prefix: %v", err)
	}
	start := time.Now()
	if err := m.Drain(pfxA); err != nil {
		t.Fatal(err)
	}
	if got := rec.last(); !slices.Equal(got, []string{pfxA.String() + " gshut", pfxB.String()}) {
		t.Fatalf("draining: %q", got)
	}
	if s := state(t, m, pfxA); s.State != Draining || !s.Maintenance {
		t.Errorf("draining status %+v", s)
	}
	rounds(m, 2) // checks go on; the drain holds
	at := rec.waitFor(t, 2*time.Second, pfxB.String())
	if d := at.Sub(start); d < 300*time.Millisecond || d > 600*time.Millisecond {
		t.Errorf("withdrawn %v after drain; drain wait is 300ms", d)
	}
	rounds(m, 3)
	if s := state(t, m, pfxA); s.State != Withdrawn || !strings.Contains(s.Reason, "maintenance") {
		t.Errorf("drained status %+v", s)
	}
	if got := m.Maintained(); !slices.Equal(got, []netip.Prefix{pfxA}) {
		t.Errorf("Maintained() = %v", got)
	}
	if err := m.Restore(netip.Prefix{}); err != nil {
		t.Fatal(err)
	}
	if got := rec.last(); !slices.Equal(got, []string{pfxA.String(), pfxB.String()}) {
		t.Fatalf("restored: %q", got)
	}

	// Drain all, restore before the wait ends: nothing is withdrawn.
	m.Drain(netip.Prefix{})
	if got := rec.last(); !slices.Equal(got, []string{pfxA.String() + " gshut", pfxB.String() + " gshut"}) {
		t.Fatalf("draining all: %q", got)
	}
	m.Restore(pfxB)
	time.Sleep(500 * time.Millisecond)
	if got := rec.last(); !slices.Equal(got, []string{pfxB.String()}) {
		t.Fatalf("after drain all and restore of B: %q", got)
	}
}

// TestDrainedAtStart: a prefix drained before a restart stays withdrawn.
func TestDrainedAtStart(t *testing.T) {
	m, rec, _ := scriptedMonitor(t, Config{Rise: 1, Fall: 1, Drained: []netip.Prefix{pfxA}})
	rounds(m, 2)
	if got := rec.last(); !slices.Equal(got, []string{pfxB.String()}) {
		t.Fatalf("routes %q", got)
	}
}

// TestStop: GRACEFUL_SHUTDOWN for the drain wait, then withdrawal, then
// the linger; a withdrawn prefix is not re-announced for the drain.
func TestStop(t *testing.T) {
	m, rec, sc := scriptedMonitor(t, Config{Rise: 1, Fall: 1, DrainWait: 300 * time.Millisecond, Linger: 200 * time.Millisecond})
	rounds(m, 1)
	sc.set(tgtB, errors.New("bad"))
	rounds(m, 1)
	start := time.Now()
	done := make(chan struct{})
	go func() { m.Stop(context.Background()); close(done) }()
	rec.waitFor(t, time.Second, pfxA.String()+" gshut")
	if s := state(t, m, pfxA); s.State != Draining {
		t.Errorf("status %+v", s)
	}
	at := rec.waitFor(t, 2*time.Second)
	<-done
	t.Logf("withdrawn %v after Stop; Stop returned after %v", at.Sub(start).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if d := at.Sub(start); d < 300*time.Millisecond {
		t.Errorf("withdrawn %v after Stop; drain wait is 300ms", d)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("Stop returned after %v; want drain wait + linger", d)
	}
	sc.set(tgtB, nil)
	rounds(m, 3)
	if got := rec.last(); len(got) != 0 {
		t.Errorf("announced after Stop: %q", got)
	}

	// Nothing announced: Stop returns at once.
	m2, _, _ := scriptedMonitor(t, Config{DrainWait: time.Hour, Linger: time.Hour})
	start = time.Now()
	m2.Stop(context.Background())
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Stop with nothing announced took %v", d)
	}
}

// TestSharedTargets: prefixes sharing a service address share its probe.
func TestSharedTargets(t *testing.T) {
	m, _, sc := scriptedMonitor(t, Config{
		Prefixes: []Prefix{
			{Route: bgp.Route{Prefix: pfxA}, Targets: []netip.AddrPort{tgtA}},
			{Route: bgp.Route{Prefix: netip.MustParsePrefix("192.0.2.0/24")}, Targets: []netip.AddrPort{tgtA}},
		},
	})
	rounds(m, 1)
	if n := sc.calls.Load(); n != 1 {
		t.Errorf("%d probes for one shared target", n)
	}
}

// TestConfigRejected: configs that cannot work are refused.
func TestConfigRejected(t *testing.T) {
	for _, cfg := range []Config{
		{Interval: time.Second, Timeout: 2 * time.Second},
		{Prefixes: []Prefix{{Route: bgp.Route{Prefix: pfxA}}}},
		{Prefixes: []Prefix{{Route: bgp.Route{Prefix: pfxA}, Targets: []netip.AddrPort{tgtA}}, {Route: bgp.Route{Prefix: pfxA}, Targets: []netip.AddrPort{tgtA}}}},
	} {
		if _, err := New(cfg, &recorder{}, nil); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
