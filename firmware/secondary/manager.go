// Package secondary keeps secondary zones fresh: per zone it runs the
// refresh, retry and expire timers of RFC 1034 §4.3.5 from the zone's SOA
// (RFC 1982 serial arithmetic), acts on NOTIFY at once (RFC 1996), tries
// the zone's primaries in order, transfers by IXFR with AXFR fallback, and
// marks a zone expired (answered SERVFAIL) when no primary confirmed it
// within its expire time. Catalog zones (RFC 9432) are secondary zones
// too; their members are added, removed and reset as the catalog changes.
//
// The wire work is package xfr's; storing, validating and serving are
// package zones', behind Backend. Transfer state (last refresh, its
// outcome, the expiry deadline) is persisted through Backend so a rebooted
// box keeps its timers. Service (service.go) is the whole secondary
// service as the node runs it: built from config.Secondary, it runs the
// Manager, answers NOTIFY and AXFR/IXFR for the DNS server, sends NOTIFY
// when a zone changes and produces this node's catalog. Primaries and
// downstreams are dialled through an injected dial function (the
// overlay's, on a node: primaries on the tailnet, by address or name).
package secondary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/xfr"
	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// Transfer is a zone arriving by AXFR, on its way into the store.
type Transfer interface {
	xfr.Sink
	Records() int
	// Abort drops what it took (a big transfer's spill file among it);
	// after PutTransfer it does nothing.
	Abort()
}

// Backend is what the Manager needs to store, serve and persist (Service
// provides it from the node's zones and store).
type Backend interface {
	// SOA returns the SOA of the stored (served) version, nil if none.
	SOA(origin string) *dns.SOA
	// Zone returns the stored zone (catalogs are read this way).
	Zone(origin string) (*zone.Zone, error)
	// PutZone validates, stores and serves a zone (a catalog's), or
	// changes nothing and says why.
	PutZone(z *zone.Zone) error
	// NewTransfer starts taking a zone by AXFR as its records arrive;
	// PutTransfer then validates, stores and serves it, or changes
	// nothing and says why.
	NewTransfer(origin string) (Transfer, error)
	PutTransfer(t Transfer) error
	// ApplyDeltas applies an IXFR the same way.
	ApplyDeltas(origin string, deltas []store.Delta) error
	// SetExpired makes the served zone answer SERVFAIL, or not.
	SetExpired(origin string, expired bool, why string)
	// Remove stops serving a zone and deletes it.
	Remove(origin string) error
	// Sources maps each stored zone to its source ("transfer", "api", ...).
	Sources() (map[string]string, error)
	// LoadState returns a persisted value, nil if there is none.
	LoadState(key string) ([]byte, error)
	// SaveState persists a value; nil deletes it.
	SaveState(key string, val []byte) error
}

// ZoneConfig is one secondary zone and its primaries, tried in order.
type ZoneConfig struct {
	Origin    string
	Primaries []xfr.Remote
}

// CatalogConfig is a catalog consumed and how its members are fed.
type CatalogConfig struct {
	Origin    string
	Primaries []xfr.Remote
	// Members are the primaries of members with no mapped group; nil
	// means the catalog's own primaries.
	Members []xfr.Remote
	// Groups maps RFC 9432 group properties to primaries.
	Groups map[string][]xfr.Remote
}

// Timers clamp the SOA timer values.
type Timers struct {
	RefreshMin, RefreshMax time.Duration
	RetryMin, RetryMax     time.Duration
	ExpireMin              time.Duration
}

// Config is the secondary service's configuration.
type Config struct {
	Zones    []ZoneConfig
	Catalogs []CatalogConfig
	// Keys resolves key names of zones added through the API.
	Keys       xfr.Keyring
	Limits     xfr.Limits
	Concurrent int // transfers at once
	Timers     Timers
	// Dial connects to primaries; nil dials directly. The node passes
	// the overlay's, so primaries on the tailnet (by address or name)
	// are reached through it.
	Dial xfr.DialFunc
	// DialFrom connects to primaries configured with a source address;
	// nil binds it and dials directly.
	DialFrom xfr.DialFromFunc
	Log      *slog.Logger
}

// Manager runs every secondary zone.
type Manager struct {
	cfg    Config
	b      Backend
	log    *slog.Logger
	client *xfr.Client
	slots  chan struct{}
	ctx    context.Context
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	zones    map[string]*zoneRun
	catalogs map[string]*CatalogConfig
	catState map[string]*catalogState
	members  map[string]memberInfo // member zone → owning catalog
	apiZones map[string][]string   // zones added through the API → primaries
	named    map[string]netip.Addr // "NAME:PORT" of named primaries → the address last reached
}

// zoneRun is one secondary zone at run time. Fields after mu-guarded are
// guarded by Manager.mu.
type zoneRun struct {
	origin    string
	primaries []xfr.Remote
	kind      string // "zone", "catalog", "member", "api"
	catalog   string // for members: the owning catalog

	ctx    context.Context
	cancel context.CancelFunc
	// applyMu serialises writing data against removal, so a transfer
	// that finishes after the zone was removed cannot bring it back.
	applyMu sync.Mutex

	// mu-guarded
	running, again, force bool
	prefer                netip.Addr
	removed, started      bool
	timer, expiry         *time.Timer
	st                    State
	saved                 State
}

// New returns a manager; Start runs it.
func New(cfg Config, b Backend) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Concurrent <= 0 {
		cfg.Concurrent = config.DefaultTransfersAtOnce
	}
	t := &cfg.Timers
	if t.RefreshMax == 0 {
		t.RefreshMax = config.DefaultRefreshMax
	}
	if t.RetryMax == 0 {
		t.RetryMax = config.DefaultRetryMax
	}
	m := &Manager{
		cfg: cfg, b: b, log: cfg.Log,
		client:   &xfr.Client{Limits: cfg.Limits},
		slots:    make(chan struct{}, cfg.Concurrent),
		zones:    map[string]*zoneRun{},
		catalogs: map[string]*CatalogConfig{},
		catState: map[string]*catalogState{},
		members:  map[string]memberInfo{},
		apiZones: map[string][]string{},
		named:    map[string]netip.Addr{},
	}
	// Every primary is dialled through m.dial.
	for i := range m.cfg.Zones {
		m.cfg.Zones[i].Primaries = m.wire(m.cfg.Zones[i].Primaries)
	}
	for i := range m.cfg.Catalogs {
		c := &m.cfg.Catalogs[i]
		c.Primaries = m.wire(c.Primaries)
		if c.Members != nil {
			c.Members = m.wire(c.Members)
		}
		groups := make(map[string][]xfr.Remote, len(c.Groups))
		for g, rs := range c.Groups {
			groups[g] = m.wire(rs)
		}
		c.Groups = groups
	}
	return m
}

// Keys under which the manager keeps its own state, beside one key per
// zone (a canonical origin, which always ends in a dot: no clash).
const (
	keyMembers  = "#catalog-members"
	keyAPIZones = "#api-zones"
)

// Start loads persisted state, removes transferred zones no longer
// configured, and starts every zone's timers. Zones the store holds keep
// being served throughout; they are refreshed when their timers say.
func (m *Manager) Start(ctx context.Context) error {
	m.ctx = ctx
	if b, err := m.b.LoadState(keyMembers); err == nil && b != nil {
		if err := json.Unmarshal(b, &m.members); err != nil {
			m.log.Warn("secondary: catalog membership state unreadable; rebuilt from the catalogs", "err", err)
			m.members = map[string]memberInfo{}
		}
	}
	if b, err := m.b.LoadState(keyAPIZones); err == nil && b != nil {
		if err := json.Unmarshal(b, &m.apiZones); err != nil {
			m.log.Warn("secondary: API-added zone list unreadable", "err", err)
		}
	}
	m.mu.Lock()
	for _, z := range m.cfg.Zones {
		m.addLocked(zone.Canonical(z.Origin), z.Primaries, "zone", "")
	}
	for i := range m.cfg.Catalogs {
		c := &m.cfg.Catalogs[i]
		origin := zone.Canonical(c.Origin)
		m.catalogs[origin] = c
		m.catState[origin] = &catalogState{}
		m.addLocked(origin, c.Primaries, "catalog", "")
	}
	for origin, prims := range m.apiZones {
		if m.zones[origin] != nil {
			continue
		}
		remotes, err := m.parseRemotes(prims)
		if err != nil {
			m.log.Error("secondary: zone added through the API has a bad primary; not refreshed", "zone", origin, "err", err)
			continue
		}
		m.addLocked(origin, remotes, "api", "")
	}
	// Members are restored from the persisted membership, so a catalog
	// that fails to load at boot does not take its members down.
	for member, mi := range m.members {
		c := m.catalogs[mi.Catalog]
		if c == nil {
			// Its catalog is no longer configured: the member goes (and
			// pruneStore deletes its data).
			delete(m.members, member)
			continue
		}
		if m.zones[member] != nil {
			continue
		}
		m.addLocked(member, primariesFor(c, mi.Groups), "member", mi.Catalog)
	}
	m.mu.Unlock()

	// Catalogs already in the store are read now: members added while
	// the box was off are picked up without waiting for a refresh.
	for origin := range m.catalogs {
		if m.b.SOA(origin) != nil {
			m.reconcile(origin)
		}
	}
	m.pruneStore()

	m.mu.Lock()
	defer m.mu.Unlock()
	for _, z := range m.zones {
		m.startLocked(z)
	}
	return nil
}

// pruneStore deletes transferred zones that nothing configures any more:
// unrefreshed, they would be served forever and never expire.
func (m *Manager) pruneStore() {
	srcs, err := m.b.Sources()
	if err != nil {
		m.log.Warn("secondary: listing stored zones", "err", err)
		return
	}
	for origin, src := range srcs {
		if src != "transfer" {
			continue
		}
		m.mu.Lock()
		_, ok := m.zones[origin]
		m.mu.Unlock()
		if ok {
			continue
		}
		m.log.Warn("secondary: transferred zone no longer configured; removing it", "zone", origin)
		if err := m.b.Remove(origin); err != nil {
			m.log.Error("secondary: removing zone", "zone", origin, "err", err)
		}
		m.b.SaveState(origin, nil)
	}
}

// Close stops all timers and waits for refreshes in progress.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for _, z := range m.zones {
		m.stopLocked(z)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// addLocked registers a zone and loads its persisted state; startLocked
// arms its timers.
func (m *Manager) addLocked(origin string, prims []xfr.Remote, kind, catalog string) *zoneRun {
	ctx, cancel := context.WithCancel(m.ctx)
	z := &zoneRun{origin: origin, primaries: prims, kind: kind, catalog: catalog, ctx: ctx, cancel: cancel}
	if b, err := m.b.LoadState(origin); err == nil && b != nil {
		if err := json.Unmarshal(b, &z.st); err != nil {
			m.log.Warn("secondary: transfer state unreadable; starting afresh", "zone", origin, "err", err)
			z.st = State{}
		}
		z.saved = z.st
	}
	m.zones[origin] = z
	return z
}

// startLocked arms a zone's timers from its persisted state: a zone with
// no data is transferred now; one past its expiry is marked expired at
// once (and refreshed now); otherwise the refresh comes when it was due.
func (m *Manager) startLocked(z *zoneRun) {
	if m.closed || z.removed || z.started {
		return
	}
	z.started = true
	now := time.Now()
	soa := m.b.SOA(z.origin)
	st := &z.st
	switch {
	case soa == nil:
		m.triggerLocked(z, false, netip.Addr{})
		return
	case st.ExpiresAt.IsZero():
		// Data but no state (state lost, or stored before this service
		// ran): a full expire period from now, and a refresh now.
		st.ExpiresAt = now.Add(m.expire(soa))
		m.triggerLocked(z, false, netip.Addr{})
	case st.Expired || !now.Before(st.ExpiresAt):
		// The snapshot loaded from the store is not marked; mark it.
		st.Expired = false
		m.expireLocked(z, "expired before the node (re)started")
		m.triggerLocked(z, false, netip.Addr{})
	case st.NextRefresh.IsZero() || !now.Before(st.NextRefresh):
		m.triggerLocked(z, false, netip.Addr{})
	default:
		m.armLocked(z, st.NextRefresh.Sub(now))
	}
	m.armExpiryLocked(z)
}

func (m *Manager) stopLocked(z *zoneRun) {
	z.cancel()
	if z.timer != nil {
		z.timer.Stop()
	}
	if z.expiry != nil {
		z.expiry.Stop()
	}
}

// triggerLocked starts a refresh now, or queues one behind the refresh in
// progress. force asks for a full transfer whatever the serials say.
func (m *Manager) triggerLocked(z *zoneRun, force bool, prefer netip.Addr) {
	if m.closed || z.removed {
		return
	}
	z.force = z.force || force
	if prefer.IsValid() {
		z.prefer = prefer
	}
	if z.running {
		z.again = true
		return
	}
	z.running = true
	m.wg.Add(1)
	go m.loop(z)
}

func (m *Manager) loop(z *zoneRun) {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		force, prefer := z.force, z.prefer
		z.force, z.again, z.prefer = false, false, netip.Addr{}
		m.mu.Unlock()

		m.refresh(z, force, prefer)

		m.mu.Lock()
		if !z.again || z.removed || m.closed {
			z.running = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
	}
}

// Refresh asks for a refresh of origin now; full forces an AXFR that is
// accepted whatever its serial (the operator's retransfer).
func (m *Manager) Refresh(origin string, full bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	z := m.zones[zone.Canonical(origin)]
	if z == nil {
		return ErrNotSecondary
	}
	m.triggerLocked(z, full, netip.Addr{})
	return nil
}

// ErrNotSecondary: the zone is not a secondary zone here.
var ErrNotSecondary = errors.New("not a secondary zone on this node")

// acquire takes a transfer slot, or fails when ctx ends.
func (m *Manager) acquire(ctx context.Context) error {
	select {
	case m.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) release() { <-m.slots }

// parseRemotes reads "ADDR[:PORT][@KEY]" strings (ADDR an IP address or
// a tailnet name).
func (m *Manager) parseRemotes(ss []string) ([]xfr.Remote, error) {
	var out []xfr.Remote
	for _, s := range ss {
		r, err := ParseRemote(s, m.cfg.Keys)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("no primaries")
	}
	return m.wire(out), nil
}

// ParseRemote reads "ADDR[:PORT][@KEY]" (ADDR an IP address or a tailnet
// name) with the key looked up in keys.
func ParseRemote(s string, keys xfr.Keyring) (xfr.Remote, error) {
	r, err := config.ParseRemote(s)
	if err != nil {
		return xfr.Remote{}, err
	}
	return RemoteFrom(r, keys)
}

// RemoteFrom turns a configured remote into one xfr dials, with its key
// looked up in keys. The address was parsed when the config was read.
func RemoteFrom(r config.Remote, keys xfr.Keyring) (xfr.Remote, error) {
	x := xfr.Remote{Source: r.Source.Addr}
	if r.Address.Host != "" {
		x.Name = r.Address.String()
	} else {
		x.Addr = r.Address.AddrPort()
	}
	if r.Key != "" {
		if x.Key = keys[dns.CanonicalName(r.Key)]; x.Key == nil {
			return xfr.Remote{}, fmt.Errorf("%s: TSIG key %q is not configured", r.Address, r.Key)
		}
	}
	return x, nil
}

// RemotesFrom is RemoteFrom for a list.
func RemotesFrom(rs []config.Remote, keys xfr.Keyring) ([]xfr.Remote, error) {
	var out []xfr.Remote
	for _, r := range rs {
		x, err := RemoteFrom(r, keys)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// wire makes the manager dial rs: through cfg.Dial (cfg.DialFrom from a
// source address), noting the address a named primary was reached at, so
// that its NOTIFYs (which come from that address) are recognised.
func (m *Manager) wire(rs []xfr.Remote) []xfr.Remote {
	out := make([]xfr.Remote, len(rs))
	for i, r := range rs {
		if r.Dial == nil {
			r.Dial = m.dial
		}
		if r.DialFrom == nil {
			r.DialFrom = m.cfg.DialFrom
		}
		out[i] = r
	}
	return out
}

func (m *Manager) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := m.cfg.Dial
	if d == nil {
		var nd net.Dialer
		d = nd.DialContext
	}
	c, err := d(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if _, err := netip.ParseAddr(host); err != nil {
			if ap := addrPortOf(c.RemoteAddr()); ap.IsValid() {
				m.mu.Lock()
				m.named[addr] = ap.Addr().Unmap()
				m.mu.Unlock()
			}
		}
	}
	return c, nil
}

// addrOfLocked is the address p is at: its own, or the one its name was
// last reached at (invalid before the first contact).
func (m *Manager) addrOfLocked(p xfr.Remote) netip.Addr {
	if p.Name != "" {
		return m.named[p.Name]
	}
	return p.Addr.Addr().Unmap()
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// AddZone adds a secondary zone at run time (the management API); it is
// persisted, and transferred at once.
func (m *Manager) AddZone(origin string, primaries []string) error {
	origin = zone.Canonical(origin)
	if _, ok := dns.IsDomainName(origin); !ok {
		return fmt.Errorf("%q is not a zone name", origin)
	}
	remotes, err := m.parseRemotes(primaries)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if z := m.zones[origin]; z != nil && z.kind != "api" {
		m.mu.Unlock()
		return fmt.Errorf("%s is already a secondary zone (%s)", origin, z.kind)
	}
	if z := m.zones[origin]; z != nil {
		z.primaries = remotes
		m.apiZones[origin] = primaries
		m.triggerLocked(z, false, netip.Addr{})
	} else {
		m.apiZones[origin] = primaries
		m.startLocked(m.addLocked(origin, remotes, "api", ""))
	}
	b, _ := json.Marshal(m.apiZones)
	m.mu.Unlock()
	return m.b.SaveState(keyAPIZones, b)
}

// RemoveZone removes a secondary zone added through the API, and its data.
func (m *Manager) RemoveZone(origin string) error {
	origin = zone.Canonical(origin)
	m.mu.Lock()
	z := m.zones[origin]
	if z == nil {
		m.mu.Unlock()
		return ErrNotSecondary
	}
	if z.kind != "api" {
		m.mu.Unlock()
		return fmt.Errorf("%s comes from the node config or a catalog (%s); change it there", origin, z.kind)
	}
	delete(m.apiZones, origin)
	b, _ := json.Marshal(m.apiZones)
	m.mu.Unlock()
	m.remove(z, "removed through the API")
	return m.b.SaveState(keyAPIZones, b)
}

// remove stops a zone and deletes its data and state.
func (m *Manager) remove(z *zoneRun, why string) {
	m.mu.Lock()
	z.removed = true
	m.stopLocked(z)
	if m.zones[z.origin] == z {
		delete(m.zones, z.origin)
	}
	m.mu.Unlock()
	z.applyMu.Lock()
	defer z.applyMu.Unlock()
	if err := m.b.Remove(z.origin); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Error("secondary: removing zone", "zone", z.origin, "err", err)
	}
	m.b.SaveState(z.origin, nil)
	m.log.Info("secondary: zone removed", "zone", z.origin, "why", why)
}

// Origins lists the secondary zones, sorted.
func (m *Manager) Origins() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.zones))
	for o := range m.zones {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}
