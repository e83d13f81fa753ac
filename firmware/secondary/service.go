package secondary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/catalog"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/xfr"
	"github.com/shoestring-dns/shoestring/firmware/zone"
	"github.com/shoestring-dns/shoestring/firmware/zones"
)

// The secondary service as the node runs it: the Manager (zones
// transferred from primaries, catalogs consumed), NOTIFY in, AXFR/IXFR out
// from the store and its journal, NOTIFY out when a zone changes, and the
// catalog this node produces of its own zones. It takes its own part of
// the config and translates it itself; its backend is the node's zones.

// Zones is what the service needs of the node's zones (package zones'
// *Zones): the one path every zone update takes.
type Zones interface {
	// SOA is the served version's SOA (nil when not served) and whether
	// it is expired.
	SOA(origin string) (soa *dns.SOA, expired bool)
	Zone(origin string) (*zone.Zone, error)
	Journal(origin string, from uint32) ([]store.Delta, error)
	Put(z *zone.Zone, source string) (store.Info, error)
	NewTransfer(origin string) (*zones.Transfer, error)
	PutTransfer(t *zones.Transfer) (store.Info, error)
	ApplyDeltas(origin string, deltas []store.Delta) error
	SetExpired(origin string, expired bool, why string)
	Delete(origin string) error
	List() ([]zones.Info, error)
	Subscribe(fn func(zones.Change))
}

// StateStore keeps the service's state next to the zones, sharing their
// crash safety (the node's store).
type StateStore interface {
	GetMeta(bucket, key string) ([]byte, error)
	PutMeta(bucket, key string, val []byte) error
	DeleteMeta(bucket, key string) error
}

// stateBucket holds the secondary service's persisted state in the store.
const stateBucket = "secondary"

// Options are what the service needs besides its config and the zones.
type Options struct {
	State StateStore
	// Dial connects to primaries and downstreams; nil dials directly.
	// The node passes the overlay's, so servers on the tailnet (by
	// address or by name) are reached through it.
	Dial xfr.DialFunc
	// DialFrom connects to primaries and downstreams configured with a
	// source address; nil binds it and dials directly.
	DialFrom xfr.DialFromFunc
	Log      *slog.Logger
}

// Service is the secondary service.
type Service struct {
	zs       Zones
	state    StateStore
	log      *slog.Logger
	server   *xfr.Server
	mgr      *Manager
	notify   []xfr.Remote
	producer string // origin of the catalog this node produces, or ""
	started  atomic.Bool

	changes  chan struct{}
	mu       sync.Mutex
	pending  map[string]bool // zones to NOTIFY downstream about
	dirty    bool            // the produced catalog may be out of date
	notifies atomic.Uint64
}

// NewService builds the service from its config section: keys, the
// outbound server and its ACL, downstreams, templates, zones and
// catalogs. It answers transfers at once (Transfer); Start runs refresh
// timers, catalog consumers, the produced catalog and outbound NOTIFY.
func NewService(sc *config.Secondary, zs Zones, opts Options) (*Service, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Service{zs: zs, state: opts.State, log: opts.Log, changes: make(chan struct{}, 1), pending: map[string]bool{}}
	keys := xfr.Keyring{}
	for _, k := range sc.Keys {
		key, err := xfr.NewKey(k.Name, k.Algorithm, k.Secret)
		if err != nil {
			return nil, err
		}
		keys[key.Name] = key
	}
	var acl xfr.ACL
	for _, r := range sc.Outbound.Allow {
		rule := xfr.Rule{}
		if r.Key != "" {
			rule.Key = dns.CanonicalName(r.Key)
		}
		for _, f := range r.From {
			p, err := config.ParsePrefixOrAddr(f)
			if err != nil {
				return nil, fmt.Errorf("secondary.outbound.allow: %q: %w", f, err)
			}
			rule.From = append(rule.From, p)
		}
		acl = append(acl, rule)
	}
	s.server = &xfr.Server{Source: xfrSource{zs}, Keys: keys, ACL: acl, Log: s.log, MaxConcurrent: sc.Outbound.Concurrent}
	notify, err := RemotesFrom(sc.Outbound.Notify, keys)
	if err != nil {
		return nil, fmt.Errorf("secondary.outbound.notify: %w", err)
	}
	for _, r := range notify {
		r.Dial, r.DialFrom = opts.Dial, opts.DialFrom
		s.notify = append(s.notify, r)
	}
	if sc.Outbound.Catalog != "" {
		s.producer = zone.Canonical(sc.Outbound.Catalog)
	}
	cfg, err := managerConfig(sc, keys)
	if err != nil {
		return nil, err
	}
	cfg.Dial, cfg.DialFrom, cfg.Log = opts.Dial, opts.DialFrom, s.log
	s.mgr = New(cfg, backend{s})
	zs.Subscribe(s.zoneChanged)
	return s, nil
}

func managerConfig(sc *config.Secondary, keys xfr.Keyring) (Config, error) {
	templates := map[string][]xfr.Remote{}
	for _, t := range sc.Templates {
		rs, err := RemotesFrom(t.Primaries, keys)
		if err != nil {
			return Config{}, fmt.Errorf("secondary template %s: %w", t.Name, err)
		}
		templates[t.Name] = rs
	}
	prims := func(rs []config.Remote, tmpl string) ([]xfr.Remote, error) {
		if tmpl != "" {
			return templates[tmpl], nil
		}
		return RemotesFrom(rs, keys)
	}
	cfg := Config{
		Keys: keys,
		Limits: xfr.Limits{MaxRecords: sc.Limits.MaxRecords, MaxBytes: sc.Limits.MaxBytes,
			Timeout: time.Duration(sc.Limits.Timeout), IdleTimeout: time.Duration(sc.Limits.IdleTimeout)},
		Concurrent: sc.Limits.Concurrent,
		Timers: Timers{RefreshMin: time.Duration(sc.Timers.RefreshMin), RefreshMax: time.Duration(sc.Timers.RefreshMax),
			RetryMin: time.Duration(sc.Timers.RetryMin), RetryMax: time.Duration(sc.Timers.RetryMax), ExpireMin: time.Duration(sc.Timers.ExpireMin)},
	}
	for _, z := range sc.Zones {
		p, err := prims(z.Primaries, z.Template)
		if err != nil {
			return cfg, fmt.Errorf("secondary zone %s: %w", z.Origin, err)
		}
		cfg.Zones = append(cfg.Zones, ZoneConfig{Origin: z.Origin, Primaries: p})
	}
	for _, c := range sc.Catalogs {
		p, err := prims(c.Primaries, c.Template)
		if err != nil {
			return cfg, fmt.Errorf("secondary catalog %s: %w", c.Origin, err)
		}
		cc := CatalogConfig{Origin: c.Origin, Primaries: p, Groups: map[string][]xfr.Remote{}}
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

// Start starts refresh timers, catalog consumers, the produced catalog
// and outbound NOTIFY; they run until ctx ends.
func (s *Service) Start(ctx context.Context) error {
	if err := s.mgr.Start(ctx); err != nil {
		return err
	}
	s.started.Store(true)
	var infos []zones.Info
	if len(s.notify) > 0 {
		// Downstreams learn at once of changes made while we were down.
		// (Listed before s.mu is taken: the zones call zoneChanged with
		// their lock held, so s.mu is never held while calling them.)
		infos, _ = s.zs.List()
	}
	s.mu.Lock()
	s.dirty = s.producer != ""
	for _, in := range infos {
		s.pending[in.Origin] = true
	}
	s.mu.Unlock()
	s.signal()
	go s.outbound(ctx)
	go func() {
		<-ctx.Done()
		s.mgr.Close()
	}()
	return nil
}

// Notify answers a NOTIFY the DNS server received (dnsserver's
// TransferHandler).
func (s *Service) Notify(msg []byte, from netip.AddrPort) []byte {
	nt, err := xfr.ParseNotify(msg, from)
	if err != nil {
		s.log.Debug("NOTIFY not understood; no reply", "from", from, "err", err)
		return nil
	}
	if !s.started.Load() {
		return nt.Reply(dns.RcodeServerFailure) // not started yet: the primary retries
	}
	return nt.Reply(s.mgr.Notify(nt))
}

// Transfer serves an AXFR or IXFR the DNS server received over TCP
// (dnsserver's TransferHandler).
func (s *Service) Transfer(msg []byte, from netip.AddrPort, w io.Writer) error {
	return s.server.Serve(msg, from, w)
}

func (s *Service) signal() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// zoneChanged is told of every zone change (with the zones' lock held, so
// it only takes note): downstreams are notified and the produced catalog
// is brought up to date by the outbound goroutine.
func (s *Service) zoneChanged(c zones.Change) {
	s.mu.Lock()
	if len(s.notify) > 0 && !c.Deleted {
		s.pending[c.Origin] = true
	}
	if s.producer != "" && c.Origin != s.producer && (c.Deleted || producedSource(c.Source)) {
		s.dirty = true
	}
	s.mu.Unlock()
	s.signal()
}

// producedSource: the zones this node is primary for, listed in the
// catalog it produces.
func producedSource(source string) bool { return source == "api" || source == "file" }

// outbound sends NOTIFYs and keeps the produced catalog current.
func (s *Service) outbound(ctx context.Context) {
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
				s.log.Error("secondary: producing catalog", "catalog", s.producer, "err", err)
			}
		}
		for origin := range pending {
			soa, expired := s.zs.SOA(origin)
			if soa == nil || expired {
				continue
			}
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
						s.log.Warn("secondary: NOTIFY not answered", "zone", origin, "to", r.String(), "err", err)
					} else if err == nil {
						s.log.Debug("secondary: NOTIFY sent", "zone", origin, "to", r.String(), "serial", soa.Serial)
					}
				}()
			}
		}
	}
}

// produceCatalog rewrites the catalog of this node's own zones when its
// membership changed; the serial moves on (never back, even after the
// store was wiped: it is at least the time).
func (s *Service) produceCatalog() error {
	infos, err := s.zs.List()
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
	if soa, _ := s.zs.SOA(s.producer); soa != nil {
		if old, err := s.zs.Zone(s.producer); err == nil {
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
		if next := soa.Serial + 1; xfr.SerialNewer(next, serial) {
			serial = next
		}
	}
	z := catalog.Build(s.producer, serial, members)
	if _, err := s.zs.Put(z, "catalog"); err != nil {
		return err
	}
	s.log.Info("secondary: produced catalog updated", "catalog", s.producer, "serial", serial, "members", len(members))
	return nil
}

// ServiceStatus is the whole service: secondary zones, consumed catalogs
// and the outbound side.
type ServiceStatus struct {
	Zones    []Status
	Catalogs []CatalogStatus
	Outbound OutboundStatus
}

// OutboundStatus is what the node serves to downstream secondaries.
type OutboundStatus struct {
	AXFRs, IXFRs, Refused uint64
	Notify                []string // downstreams
	Catalog               string   // produced
	Notifies              uint64   // sent
}

// Status returns the whole service's state.
func (s *Service) Status() ServiceStatus {
	out := ServiceStatus{Outbound: OutboundStatus{AXFRs: s.server.AXFRs.Load(), IXFRs: s.server.IXFRs.Load(),
		Refused: s.server.Refusals.Load(), Catalog: s.producer, Notifies: s.notifies.Load()}}
	for _, r := range s.notify {
		out.Outbound.Notify = append(out.Outbound.Notify, r.String())
	}
	if !s.started.Load() {
		return out
	}
	out.Zones = s.mgr.Status()
	out.Catalogs = s.mgr.Catalogs()
	return out
}

// errNotRunning: the service has not started (yet).
var errNotRunning = errors.New("the secondary service is not running")

// ZoneStatus returns one secondary zone's state; ErrNotSecondary for a
// zone that is not one.
func (s *Service) ZoneStatus(origin string) (Status, error) {
	if !s.started.Load() {
		return Status{}, errNotRunning
	}
	st, ok := s.mgr.ZoneStatus(origin)
	if !ok {
		return Status{}, fmt.Errorf("%s: %w", zone.Canonical(origin), ErrNotSecondary)
	}
	return st, nil
}

// Refresh checks origin's primaries now; full retransfers the whole zone
// whatever the serials say.
func (s *Service) Refresh(origin string, full bool) error {
	if !s.started.Load() {
		return errNotRunning
	}
	if err := s.mgr.Refresh(origin, full); err != nil {
		return fmt.Errorf("%s: %w", zone.Canonical(origin), err)
	}
	return nil
}

// AddZone adds a secondary zone fed from primaries ("ADDR[:PORT][@KEY]",
// ADDR an IP address or a tailnet name), persisted and transferred at once.
func (s *Service) AddZone(origin string, primaries []string) (Status, error) {
	if !s.started.Load() {
		return Status{}, errNotRunning
	}
	if err := s.mgr.AddZone(origin, primaries); err != nil {
		return Status{}, err
	}
	return s.ZoneStatus(origin)
}

// RemoveZone removes a secondary zone added through the API, and its data.
func (s *Service) RemoveZone(origin string) error {
	if !s.started.Load() {
		return errNotRunning
	}
	err := s.mgr.RemoveZone(origin)
	if errors.Is(err, ErrNotSecondary) {
		return fmt.Errorf("%s: %w", zone.Canonical(origin), err)
	}
	return err
}

// xfrSource lets outbound transfers read the zones.
type xfrSource struct{ zs Zones }

func (x xfrSource) SOA(origin string) *dns.SOA {
	soa, expired := x.zs.SOA(origin)
	if expired {
		return nil
	}
	return soa
}

func (x xfrSource) Zone(origin string) (*zone.Zone, error) { return x.zs.Zone(origin) }

func (x xfrSource) Journal(origin string, from uint32) ([]store.Delta, error) {
	return x.zs.Journal(origin, from)
}

// backend is the service as its Manager sees it: the zones, and the
// state store.
type backend struct{ s *Service }

func (b backend) SOA(origin string) *dns.SOA {
	soa, _ := b.s.zs.SOA(origin)
	return soa
}

func (b backend) Zone(origin string) (*zone.Zone, error) { return b.s.zs.Zone(origin) }

// PutZone stores and serves a zone through the same path as a file
// import (validated, stored, built, swapped; big zones in big-zone mode).
func (b backend) PutZone(z *zone.Zone) error {
	_, err := b.s.zs.Put(z, "transfer")
	return err
}

func (b backend) NewTransfer(origin string) (Transfer, error) { return b.s.zs.NewTransfer(origin) }

// PutTransfer stores and serves a transferred zone through that path too.
func (b backend) PutTransfer(t Transfer) error {
	_, err := b.s.zs.PutTransfer(t.(*zones.Transfer))
	return err
}

func (b backend) ApplyDeltas(origin string, deltas []store.Delta) error {
	return b.s.zs.ApplyDeltas(origin, deltas)
}

func (b backend) SetExpired(origin string, expired bool, why string) {
	b.s.zs.SetExpired(origin, expired, why)
}

func (b backend) Remove(origin string) error {
	err := b.s.zs.Delete(origin)
	if errors.Is(err, zones.ErrNotFound) {
		return nil
	}
	return err
}

func (b backend) Sources() (map[string]string, error) {
	infos, err := b.s.zs.List()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(infos))
	for _, in := range infos {
		out[in.Origin] = in.Source
	}
	return out, nil
}

func (b backend) LoadState(key string) ([]byte, error) {
	v, err := b.s.state.GetMeta(stateBucket, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

func (b backend) SaveState(key string, val []byte) error {
	if val == nil {
		return b.s.state.DeleteMeta(stateBucket, key)
	}
	return b.s.state.PutMeta(stateBucket, key, val)
}
