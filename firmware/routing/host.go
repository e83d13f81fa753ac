package routing

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/bgp"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/netconf"
)

// Host mode (shoestring host): one speaker announces the prefixes of many
// tenants, each driven by that tenant's own health checks and by its
// process. Each tenant's routes live in their own slot of a merged set, so
// that one tenant's change never touches another tenant's routes (the
// speaker sends UPDATEs only for what changed).

// StartHost applies the network section (with only lo managed when it is
// empty: the tenants' service addresses go there) and starts BGP and BFD.
// There are no checks of the host's own; each tenant's come with Tenant.
func (r *Routing) StartHost(ctx context.Context) error {
	m, err := netconf.New(netconfConfig(r.cfg.Network), r.log.With("part", "network"))
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if _, err := m.Apply(); err != nil {
		r.log.Error("network config not fully applied; retrying in the background", "err", err)
	}
	r.net = m
	r.running.Go(func() {
		m.Run(ctx)
		m.Close()
	})
	r.merged = &merged{slots: map[string]*slot{}}
	if !r.cfg.BGP.Enabled() {
		r.merged.out = noAnnouncer{}
		return nil
	}
	sp, err := bgp.New(bgpConfig(r.cfg), r.log.With("part", "bgp"))
	if err != nil {
		return err
	}
	r.speaker = sp
	r.merged.out = sp
	r.running.Go(func() {
		if !r.net.Settle(ctx, 5*time.Second) {
			r.log.Warn("network: addresses still tentative after 5s; starting BGP anyway")
		}
		if err := sp.Run(ctx); err != nil {
			r.log.Error("bgp speaker stopped", "err", err)
		}
	})
	return nil
}

// SetAnycast puts owner's service addresses on lo (none: removes them),
// through netconf, the one owner of lo's addresses.
func (r *Routing) SetAnycast(owner string, addrs []netip.Addr) error {
	if r.net == nil {
		return fmt.Errorf("routing: network not started")
	}
	return r.net.SetAnycast(owner, addrs)
}

// TenantChecks is what a tenant is announced for and how it is checked.
type TenantChecks struct {
	Prefixes  []netip.Prefix
	Addresses []netip.Addr // service addresses, each inside one of Prefixes
	Port      int
	NSID      string // every reply must carry it: this tenant answered
	Canary    health.Query
}

// TenantRoutes are one tenant's announcements: a health monitor over its
// addresses whose output is the tenant's slot of the merged set. A
// process that dies is withdrawn at once (Withdraw), and a new process
// starts a fresh monitor (Watch), announced only after Rise rounds.
type TenantRoutes struct {
	r    *Routing
	name string
	hc   health.Config

	mu     sync.Mutex
	mon    *health.Monitor
	stop   context.CancelFunc
	status []health.PrefixStatus // the last monitor's, kept after Withdraw
}

// Tenant returns the announcements of tenant name; nothing is announced
// until Watch.
func (r *Routing) Tenant(name string, tc TenantChecks) (*TenantRoutes, error) {
	if r.merged == nil {
		return nil, fmt.Errorf("routing: not started in host mode")
	}
	h := r.cfg.Health
	hc := health.Config{
		Interval: time.Duration(h.Interval), Timeout: time.Duration(h.Timeout),
		Rise: h.Rise, Fall: h.Fall,
		DrainWait: time.Duration(h.Drain.Wait), Linger: time.Duration(h.Drain.Linger),
		NSID: tc.NSID,
	}
	for _, p := range tc.Prefixes {
		hp := health.Prefix{Route: bgp.Route{Prefix: p.Masked()}, Query: tc.Canary}
		for _, a := range tc.Addresses {
			if p.Contains(a) {
				hp.Targets = append(hp.Targets, netip.AddrPortFrom(a, uint16(tc.Port)))
			}
		}
		if len(hp.Targets) == 0 {
			return nil, fmt.Errorf("tenant %s: prefix %v holds none of its addresses", name, p)
		}
		hc.Prefixes = append(hc.Prefixes, hp)
	}
	// Checked now, so that a bad tenant is refused when it is added.
	if _, err := health.New(hc, noAnnouncer{}, nil); err != nil {
		return nil, fmt.Errorf("tenant %s: %w", name, err)
	}
	return &TenantRoutes{r: r, name: name, hc: hc}, nil
}

// Watch starts a fresh monitor (after Withdraw, or the first time): the
// prefixes are announced once Rise rounds pass.
func (t *TenantRoutes) Watch() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopLocked()
	s := t.r.merged.open(t.name)
	mon, err := health.New(t.hc, s, t.r.log.With("part", "health", "tenant", t.name))
	if err != nil {
		t.r.log.Error("tenant checks", "tenant", t.name, "err", err) // checked in Tenant
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.mon, t.stop = mon, cancel
	go mon.Run(ctx)
}

// Withdraw takes the tenant's prefixes out at once (its process died):
// no drain, no waiting for checks to fail.
func (t *TenantRoutes) Withdraw() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopLocked()
	t.r.merged.close(t.name)
}

func (t *TenantRoutes) stopLocked() {
	if t.mon != nil {
		t.status = t.mon.Status()
		t.stop()
		t.mon, t.stop = nil, nil
	}
}

// Drain is the planned stop: GRACEFUL_SHUTDOWN for the drain wait, then
// withdrawn; the process is still answering throughout.
func (t *TenantRoutes) Drain(ctx context.Context) {
	t.mu.Lock()
	mon := t.mon
	t.mu.Unlock()
	if mon != nil {
		mon.Stop(ctx)
	}
	t.Withdraw()
}

// Status is the state of each of the tenant's prefixes.
func (t *TenantRoutes) Status() []health.PrefixStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mon != nil {
		return t.mon.Status()
	}
	out := slices.Clone(t.status)
	for i := range out {
		out[i].State, out[i].Reason = health.Withdrawn, "tenant process not running"
	}
	return out
}

// merged is the speaker's whole set: every tenant's slot.
type merged struct {
	out health.Announcer

	mu    sync.Mutex
	slots map[string]*slot
}

// slot is one monitor's view of its tenant's routes; a slot that was
// closed (its process died, or a newer monitor took over) is ignored.
type slot struct {
	m      *merged
	name   string
	routes []bgp.Route
	closed bool
}

func (m *merged) open(name string) *slot {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.slots[name]; old != nil {
		old.closed = true
	}
	s := &slot{m: m, name: name}
	m.slots[name] = s
	m.publishLocked()
	return s
}

func (m *merged) close(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.slots[name]; s != nil {
		s.closed = true
		delete(m.slots, name)
		m.publishLocked()
	}
}

// SetRoutes is the monitor's output: its tenant's routes.
func (s *slot) SetRoutes(routes []bgp.Route) error {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.closed {
		return nil
	}
	s.routes = slices.Clone(routes)
	return s.m.publishLocked()
}

func (m *merged) publishLocked() error {
	names := make([]string, 0, len(m.slots))
	for n := range m.slots {
		names = append(names, n)
	}
	sort.Strings(names)
	var all []bgp.Route
	for _, n := range names {
		all = append(all, m.slots[n].routes...)
	}
	return m.out.SetRoutes(all)
}
