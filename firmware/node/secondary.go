package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/catalog"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/firmware/secondary"
	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/xfr"
	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// The secondary service: zones transferred from primaries (package
// secondary runs their timers, package xfr speaks the protocols), NOTIFY
// in and out, outbound AXFR/IXFR from the store and its journal, and the
// catalog this node produces of its own zones.

// metaBucket holds the secondary service's persisted state in the store.
const metaBucket = "secondary"

// bigZone is the record count above which memory is handed back to the
// OS right after a transfer: a 512 MB box needs it for the next one.
const bigZone = 100_000

// secondaryState is the node's side of the secondary service.
type secondaryState struct {
	n      *Node
	keys   xfr.Keyring
	server *xfr.Server
	mgr    atomic.Pointer[secondary.Manager]
	notify []xfr.Remote
	// producer is the origin of the catalog this node produces, or "".
	producer string

	changes  chan struct{}
	bigMu    sync.Mutex // one big zone update at a time
	mu       sync.Mutex
	pending  map[string]bool // zones to NOTIFY downstream about
	dirty    bool            // the produced catalog may be out of date
	notifies atomic.Uint64
}

// secondarySetup builds the secondary service's static parts from the
// config: keys, the outbound server and its ACL, downstreams.
func (n *Node) secondarySetup() (*secondaryState, error) {
	sc := &n.cfg.Secondary
	s := &secondaryState{n: n, keys: xfr.Keyring{}, changes: make(chan struct{}, 1), pending: map[string]bool{}}
	for _, k := range sc.Keys {
		key, err := xfr.NewKey(k.Name, k.Algorithm, k.Secret)
		if err != nil {
			return nil, err
		}
		s.keys[key.Name] = key
	}
	var acl xfr.ACL
	for _, r := range sc.Outbound.Allow {
		rule := xfr.Rule{}
		if r.Key != "" {
			rule.Key = dns.CanonicalName(r.Key)
		}
		for _, f := range r.From {
			p, err := xfr.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("secondary.outbound.allow: %q: %w", f, err)
			}
			rule.From = append(rule.From, p)
		}
		acl = append(acl, rule)
	}
	s.server = &xfr.Server{Source: xfrSource{n}, Keys: s.keys, ACL: acl, Log: n.log, MaxConcurrent: sc.Outbound.Concurrent}
	var err error
	if s.notify, err = s.remotes(sc.Outbound.Notify); err != nil {
		return nil, fmt.Errorf("secondary.outbound.notify: %w", err)
	}
	if sc.Outbound.Catalog != "" {
		s.producer = zone.Canonical(sc.Outbound.Catalog)
	}
	return s, nil
}

func (s *secondaryState) remotes(rs []config.Remote) ([]xfr.Remote, error) {
	var out []xfr.Remote
	for _, r := range rs {
		ap, err := config.ParseEndpoint(r.Address)
		if err != nil {
			return nil, err
		}
		x := xfr.Remote{Addr: ap}
		if r.Key != "" {
			if x.Key = s.keys[dns.CanonicalName(r.Key)]; x.Key == nil {
				return nil, fmt.Errorf("%s: key %q is not configured", r.Address, r.Key)
			}
		}
		if r.Source != "" {
			if x.Source, err = netip.ParseAddr(r.Source); err != nil {
				return nil, fmt.Errorf("%s: source: %w", r.Address, err)
			}
		}
		out = append(out, x)
	}
	return out, nil
}

// transferHandler takes NOTIFY and AXFR/IXFR from the DNS server. It is
// called before the server starts, so outbound transfers work from the
// first query; NOTIFY is acted on once startSecondary has run.
func (n *Node) transferHandler() dnsserver.TransferHandler {
	s, err := n.secondarySetup()
	if err != nil {
		// The config was checked; a key that still fails is a bug. Serve
		// without the secondary service rather than not at all.
		n.log.Error("secondary service disabled", "err", err)
		return nil
	}
	n.sec = s
	return transferHandler{s}
}

type transferHandler struct{ s *secondaryState }

func (h transferHandler) Notify(msg []byte, from netip.AddrPort) []byte {
	nt, err := xfr.ParseNotify(msg, from)
	if err != nil {
		h.s.n.log.Debug("NOTIFY not understood; no reply", "from", from, "err", err)
		return nil
	}
	mgr := h.s.mgr.Load()
	if mgr == nil {
		return nt.Reply(dns.RcodeServerFailure) // not started yet: the primary retries
	}
	return nt.Reply(mgr.Notify(nt))
}

func (h transferHandler) Transfer(msg []byte, from netip.AddrPort, w io.Writer) error {
	return h.s.server.Serve(msg, from, w)
}

// xfrSource lets outbound transfers read the store.
type xfrSource struct{ n *Node }

func (x xfrSource) SOA(origin string) *dns.SOA {
	snap := x.n.dns.Zone(origin)
	if snap == nil || snap.Expired() {
		return nil
	}
	return snap.SOA()
}

func (x xfrSource) Zone(origin string) (*zone.Zone, error) { return x.n.store.Zone(origin) }

func (x xfrSource) Journal(origin string, from uint32) ([]store.Delta, error) {
	return x.n.store.Journal(origin, from)
}

// startSecondary starts refresh timers, catalog consumers, the produced
// catalog and outbound NOTIFY.
func (n *Node) startSecondary(ctx context.Context) error {
	s := n.sec
	if s == nil {
		return nil
	}
	cfg, err := s.managerConfig(&n.cfg.Secondary)
	if err != nil {
		return err
	}
	mgr := secondary.New(cfg, nodeBackend{n})
	if err := mgr.Start(ctx); err != nil {
		return err
	}
	s.mgr.Store(mgr)
	s.mu.Lock()
	s.dirty = s.producer != ""
	if len(s.notify) > 0 {
		// Downstreams learn at once of changes made while we were down.
		infos, _ := n.store.List()
		for _, in := range infos {
			s.pending[in.Origin] = true
		}
	}
	s.mu.Unlock()
	s.signal()
	go s.outbound(ctx)
	go func() {
		<-ctx.Done()
		mgr.Close()
	}()
	return nil
}

func (s *secondaryState) managerConfig(sc *config.Secondary) (secondary.Config, error) {
	templates := map[string][]xfr.Remote{}
	for _, t := range sc.Templates {
		rs, err := s.remotes(t.Primaries)
		if err != nil {
			return secondary.Config{}, fmt.Errorf("secondary template %s: %w", t.Name, err)
		}
		templates[t.Name] = rs
	}
	prims := func(rs []config.Remote, tmpl string) ([]xfr.Remote, error) {
		if tmpl != "" {
			return templates[tmpl], nil
		}
		return s.remotes(rs)
	}
	cfg := secondary.Config{
		Keys: s.keys,
		Limits: xfr.Limits{MaxRecords: sc.Limits.MaxRecords, MaxBytes: sc.Limits.MaxBytes,
			Timeout: time.Duration(sc.Limits.Timeout), IdleTimeout: time.Duration(sc.Limits.IdleTimeout)},
		Concurrent: sc.Limits.Concurrent,
		Timers: secondary.Timers{RefreshMin: time.Duration(sc.Timers.RefreshMin), RefreshMax: time.Duration(sc.Timers.RefreshMax),
			RetryMin: time.Duration(sc.Timers.RetryMin), RetryMax: time.Duration(sc.Timers.RetryMax), ExpireMin: time.Duration(sc.Timers.ExpireMin)},
		Log: s.n.log,
	}
	for _, z := range sc.Zones {
		p, err := prims(z.Primaries, z.Template)
		if err != nil {
			return cfg, fmt.Errorf("secondary zone %s: %w", z.Origin, err)
		}
		cfg.Zones = append(cfg.Zones, secondary.ZoneConfig{Origin: z.Origin, Primaries: p})
	}
	for _, c := range sc.Catalogs {
		p, err := prims(c.Primaries, c.Template)
		if err != nil {
			return cfg, fmt.Errorf("secondary catalog %s: %w", c.Origin, err)
		}
		cc := secondary.CatalogConfig{Origin: c.Origin, Primaries: p, Groups: map[string][]xfr.Remote{}}
		if c.MemberTemplate != "" {
			cc.Members = templates[c.MemberTemplate]
		}
		for g, t := range c.Groups {
			cc.Groups[g] = templates[t]
		}
		cfg.Catalogs = append(cfg.Catalogs, cc)
	}
	return cfg, nil
}

func (s *secondaryState) signal() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// zoneChanged is called by putZone and DeleteZone (with n.mu held, so it
// only takes note): downstreams are notified and the produced catalog is
// brought up to date by the outbound goroutine.
func (n *Node) zoneChanged(origin, source string) {
	s := n.sec
	if s == nil {
		return
	}
	s.mu.Lock()
	if len(s.notify) > 0 {
		s.pending[origin] = true
	}
	if s.producer != "" && origin != s.producer && (source == "" || producedSource(source)) {
		s.dirty = true
	}
	s.mu.Unlock()
	s.signal()
}

// producedSource: the zones this node is primary for, listed in the
// catalog it produces.
func producedSource(source string) bool { return source == "api" || source == "file" }

// outbound sends NOTIFYs and keeps the produced catalog current.
func (s *secondaryState) outbound(ctx context.Context) {
	sem := make(chan struct{}, 16)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changes:
		}
		s.mu.Lock()
		pending, dirty := s.pending, s.dirty
		s.pending, s.dirty = map[string]bool{}, false
		s.mu.Unlock()
		if dirty {
			if err := s.produceCatalog(); err != nil {
				s.n.log.Error("secondary: producing catalog", "catalog", s.producer, "err", err)
			}
		}
		for origin := range pending {
			snap := s.n.dns.Zone(origin)
			if snap == nil || snap.Expired() {
				continue
			}
			soa := snap.SOA()
			for _, r := range s.notify {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				go func() {
					defer func() { <-sem }()
					err := xfr.SendNotify(ctx, r, origin, soa)
					s.notifies.Add(1)
					if err != nil && ctx.Err() == nil {
						s.n.log.Warn("secondary: NOTIFY not answered", "zone", origin, "to", r.String(), "err", err)
					} else if err == nil {
						s.n.log.Debug("secondary: NOTIFY sent", "zone", origin, "to", r.String(), "serial", soa.Serial)
					}
				}()
			}
		}
	}
}

// produceCatalog rewrites the catalog of this node's own zones when its
// membership changed; the serial moves on (never back, even after the
// store was wiped: it is at least the time).
func (s *secondaryState) produceCatalog() error {
	n := s.n
	infos, err := n.store.List()
	if err != nil {
		return err
	}
	var members []string
	for _, in := range infos {
		if producedSource(in.Source) && in.Origin != s.producer {
			members = append(members, in.Origin)
		}
	}
	serial := uint32(time.Now().Unix())
	if snap := n.dns.Zone(s.producer); snap != nil {
		if old, err := n.store.Zone(s.producer); err == nil {
			if cat, err := catalog.Parse(old); err == nil {
				var have []string
				for m := range cat.Members {
					have = append(have, m)
				}
				slices.Sort(have)
				slices.Sort(members)
				if slices.Equal(have, members) {
					return nil
				}
			}
		}
		if next := snap.Serial() + 1; xfr.SerialNewer(next, serial) {
			serial = next
		}
	}
	z := catalog.Build(s.producer, serial, members)
	if _, err := n.putZone(z, "catalog"); err != nil {
		return err
	}
	n.log.Info("secondary: produced catalog updated", "catalog", s.producer, "serial", serial, "members", len(members))
	return nil
}

// nodeBackend is the node as package secondary sees it.
type nodeBackend struct{ n *Node }

func (b nodeBackend) SOA(origin string) *dns.SOA {
	if snap := b.n.dns.Zone(origin); snap != nil {
		return snap.SOA()
	}
	return nil
}

func (b nodeBackend) Zone(origin string) (*zone.Zone, error) { return b.n.store.Zone(origin) }

// PutZone stores and serves a transferred zone through the same path as
// a file import (validated, built, stored, swapped); big zones go
// through putBig.
func (b nodeBackend) PutZone(z *zone.Zone) error {
	if len(z.Records) > bigZone {
		return b.putBig(z)
	}
	_, err := b.n.putZone(z, "transfer")
	if err == nil {
		b.n.setProblem(z.Origin, "")
	}
	return err
}

// putBig applies a big transferred zone so that a 512 MB box survives
// it. The received records are the one copy of the zone held throughout;
// the store's write (which validates) and the snapshot build each need
// several times that in scratch, so they run one after the other, not
// with the new snapshot already built as putZone does, and one big zone
// at a time, with the GC held to the configured memory target meanwhile
// (it works harder; the transfer takes longer). Build cannot fail on a
// zone the store validated, so storing first does not let through a
// zone the server cannot index.
func (b nodeBackend) putBig(z *zone.Zone) error {
	n, s := b.n, b.n.sec
	unlock := s.bigZoneMode()
	defer unlock()
	n.mu.Lock()
	info, err := n.store.PutZoneFrom(z, "transfer")
	n.mu.Unlock()
	if err != nil {
		z.Records = nil
		return err
	}
	runtime.GC() // the store's scratch goes before the build makes its own
	snap, err := dnsserver.Build(z)
	z.Records = nil
	if err != nil {
		n.setProblem(z.Origin, "stored but not servable: "+err.Error())
		return err
	}
	n.mu.Lock()
	if cur, err := n.store.Info(z.Origin); err == nil && cur.Serial == info.Serial && cur.Updated.Equal(info.Updated) {
		// Unless the zone changed again meanwhile (then that version
		// is the one served).
		n.dns.Put(snap)
		delete(n.problems, z.Origin)
		n.zoneChanged(z.Origin, "transfer")
	}
	n.mu.Unlock()
	snap = nil
	n.releaseMemory()
	return nil
}

// bigZoneMode serialises big zone updates and holds the Go heap to the
// configured memory target while one runs; the returned func undoes it.
func (s *secondaryState) bigZoneMode() func() {
	s.bigMu.Lock()
	target := s.n.cfg.Secondary.Limits.MemoryTarget
	prev := debug.SetMemoryLimit(-1)
	if target > 0 && target < prev {
		debug.SetMemoryLimit(target)
	}
	return func() {
		debug.SetMemoryLimit(prev)
		s.bigMu.Unlock()
	}
}

// ApplyDeltas applies an IXFR: the store checks that each delta starts
// at its serial and that the result validates, and journals the deltas
// (so this node serves IXFR onwards); then the snapshot is rebuilt from
// the stored zone and swapped in.
func (b nodeBackend) ApplyDeltas(origin string, deltas []store.Delta) error {
	n := b.n
	if snap := n.dns.Zone(origin); snap != nil && snap.Records() > bigZone {
		// The whole zone is decoded, validated and rebuilt for each
		// IXFR: as heavy as a full transfer in memory.
		defer b.n.sec.bigZoneMode()()
		defer n.releaseMemory()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.store.ApplyDelta(origin, deltas); err != nil {
		return err
	}
	z, err := n.store.Zone(origin)
	if err != nil {
		return err
	}
	snap, err := dnsserver.Build(z)
	if err != nil {
		// Stored but not servable: cannot happen for a zone that
		// validated; say so loudly rather than serve the old version
		// under the new serial's journal.
		n.problems[origin] = "IXFR stored but not servable: " + err.Error()
		return err
	}
	n.dns.Put(snap)
	delete(n.problems, origin)
	n.zoneChanged(origin, "transfer")
	return nil
}

func (b nodeBackend) SetExpired(origin string, expired bool, why string) {
	n := b.n
	n.mu.Lock()
	defer n.mu.Unlock()
	snap := n.dns.Zone(origin)
	if snap == nil || snap.Expired() == expired {
		return
	}
	n.dns.Put(snap.WithExpired(expired))
	if expired {
		n.problems[origin] = "expired (answering SERVFAIL): " + why
	} else {
		delete(n.problems, origin)
	}
}

func (b nodeBackend) Remove(origin string) error {
	err := b.n.DeleteZone(origin)
	if errors.Is(err, api.ErrNotFound) {
		return nil
	}
	return err
}

func (b nodeBackend) Sources() (map[string]string, error) {
	infos, err := b.n.store.List()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(infos))
	for _, in := range infos {
		out[in.Origin] = in.Source
	}
	return out, nil
}

func (b nodeBackend) LoadState(key string) ([]byte, error) {
	v, err := b.n.store.GetMeta(metaBucket, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

func (b nodeBackend) SaveState(key string, val []byte) error {
	if val == nil {
		return b.n.store.DeleteMeta(metaBucket, key)
	}
	return b.n.store.PutMeta(metaBucket, key, val)
}

// secondaryRoutes adds the transfer endpoints to the management API.
func (n *Node) secondaryRoutes(mux *http.ServeMux) {
	if n.sec != nil {
		api.SecondaryRoutes(mux, secondaryAPI{n.sec}, n.log)
	}
}

// secondaryAPI is the node as the secondary endpoints see it.
type secondaryAPI struct{ s *secondaryState }

func (a secondaryAPI) mgr() (*secondary.Manager, error) {
	if m := a.s.mgr.Load(); m != nil {
		return m, nil
	}
	return nil, errors.New("the secondary service is not running")
}

func (a secondaryAPI) SecondaryStatus() api.SecondaryStatus {
	out := api.SecondaryStatus{Zones: []api.SecondaryZone{}, Catalogs: []api.CatalogStatus{}}
	srv := a.s.server
	out.Outbound = api.OutboundStatus{AXFRs: srv.AXFRs.Load(), IXFRs: srv.IXFRs.Load(), Refused: srv.Refusals.Load(),
		Catalog: a.s.producer, Notifies: a.s.notifies.Load()}
	for _, r := range a.s.notify {
		out.Outbound.Notify = append(out.Outbound.Notify, r.String())
	}
	m, err := a.mgr()
	if err != nil {
		return out
	}
	for _, s := range m.Status() {
		out.Zones = append(out.Zones, apiZone(s))
	}
	for _, c := range m.Catalogs() {
		out.Catalogs = append(out.Catalogs, api.CatalogStatus(c))
	}
	return out
}

func (a secondaryAPI) SecondaryZone(origin string) (api.SecondaryZone, error) {
	m, err := a.mgr()
	if err != nil {
		return api.SecondaryZone{}, err
	}
	s, ok := m.ZoneStatus(origin)
	if !ok {
		return api.SecondaryZone{}, fmt.Errorf("%s: %w as a secondary zone", zone.Canonical(origin), api.ErrNotFound)
	}
	return apiZone(s), nil
}

func (a secondaryAPI) RefreshZone(origin string, full bool) error {
	m, err := a.mgr()
	if err != nil {
		return err
	}
	if err := m.Refresh(origin, full); errors.Is(err, secondary.ErrNotSecondary) {
		return fmt.Errorf("%s: %w as a secondary zone", zone.Canonical(origin), api.ErrNotFound)
	}
	return nil
}

func (a secondaryAPI) AddSecondary(origin string, primaries []string) (api.SecondaryZone, error) {
	m, err := a.mgr()
	if err != nil {
		return api.SecondaryZone{}, err
	}
	if err := m.AddZone(origin, primaries); err != nil {
		return api.SecondaryZone{}, err
	}
	return a.SecondaryZone(origin)
}

func (a secondaryAPI) RemoveSecondary(origin string) error {
	m, err := a.mgr()
	if err != nil {
		return err
	}
	err = m.RemoveZone(origin)
	if errors.Is(err, secondary.ErrNotSecondary) {
		return fmt.Errorf("%s: %w as a secondary zone", zone.Canonical(origin), api.ErrNotFound)
	}
	return err
}

func apiZone(s secondary.Status) api.SecondaryZone {
	z := api.SecondaryZone{
		Origin: s.Origin, Kind: s.Kind, Catalog: s.Catalog, Primaries: s.Primaries, HasData: s.HasData, Serial: s.Serial,
		Primary: s.Primary, LastAttempt: s.LastAttempt, LastSuccess: s.LastSuccess, LastTransfer: s.LastTransfer,
		LastResult: s.LastResult, LastError: s.LastError, Failures: s.Failures, NextRefresh: s.NextRefresh,
		ExpiresAt: s.ExpiresAt, Expired: s.Expired, Refreshing: s.Refreshing, AXFRs: s.AXFRs, IXFRs: s.IXFRs, Rejected: s.Rejected,
	}
	if s.HavePrimarySerial {
		ps := s.PrimarySerial
		z.PrimarySerial = &ps
	}
	return z
}
