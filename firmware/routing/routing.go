// Package routing makes the node's routing follow its health: it applies
// the network section through netlink (netconf), runs the BGP speaker and
// BFD from the bgp section, runs the health checks that decide what the
// speaker announces, keeps an operator's drain of prefixes across
// restarts, and drains every prefix before a planned stop. Health decides,
// the speaker obeys: nothing else calls SetRoutes.
//
// It translates its own part of the config document (network, bgp,
// health); its state is read through Sessions, BFD, Prefixes, Network and
// the verdicts Serving and Announcing.
package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/bfd"
	"github.com/shoestring-dns/shoestring/firmware/bgp"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/netconf"
)

// Meta keeps small state across restarts: the store's meta buckets.
type Meta interface {
	GetMeta(bucket, key string) ([]byte, error)
	PutMeta(bucket, key string, val []byte) error
}

// Where an operator's drain is kept, so that a drained node that reboots
// does not come back announcing.
const (
	metaBucket  = "routing"
	metaDrained = "drained"
)

// DNS is what the health checks need from the DNS server: where it
// listens (each address gets a liveness query) and which zones are past
// their SOA expire.
type DNS interface {
	Addrs() []string
	ExpiredZones() []string
}

// Routing is the node's routing; parts that are not configured stay nil.
type Routing struct {
	cfg  *config.Config
	meta Meta
	log  *slog.Logger

	net     *netconf.Manager
	speaker *bgp.Speaker
	bfd     *bfd.Server
	health  *health.Monitor
	// running counts the goroutines StartNetwork, Start and StartHost
	// start; Wait waits for them.
	running sync.WaitGroup
	attrs   map[netip.Prefix]config.Announce
	merged  *merged // host mode: every tenant's routes (host.go)
}

// New reads the network, bgp and health sections of c; nothing starts
// until StartNetwork and Start.
func New(c *config.Config, meta Meta, log *slog.Logger) *Routing {
	r := &Routing{cfg: c, meta: meta, log: log, attrs: map[netip.Prefix]config.Announce{}}
	for _, a := range c.BGP.Prefixes {
		r.attrs[a.Prefix.Masked()] = a
	}
	return r
}

// StartNetwork applies the network section, before the DNS server binds
// its service addresses, then keeps it applied until ctx ends. A part that
// cannot be applied (a missing link, say) is logged and retried; it does
// not stop the node from serving on the rest.
func (r *Routing) StartNetwork(ctx context.Context) error {
	nc := r.cfg.Network
	if !nc.Enabled() {
		return nil
	}
	log := r.log.With("part", "network")
	m, err := netconf.New(netconfConfig(nc), log)
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	start := time.Now()
	changes, err := m.Apply()
	r.log.Info("network applied", "changes", len(changes), "took", time.Since(start).Round(time.Microsecond))
	for _, c := range changes {
		r.log.Debug("network change", "change", c)
	}
	if err != nil {
		r.log.Error("network config not fully applied; retrying in the background", "err", err)
	}
	r.net = m
	r.running.Go(func() {
		m.Run(ctx)
		m.Close()
	})
	return nil
}

// Start starts BGP, BFD and the health checks, which query dns. The
// checks run even without BGP: Serving (and so the hardware watchdog)
// goes by them.
func (r *Routing) Start(ctx context.Context, dns DNS) error {
	var out health.Announcer = noAnnouncer{}
	if r.cfg.BGP.Enabled() {
		sp, err := bgp.New(bgpConfig(r.cfg), r.log.With("part", "bgp"))
		if err != nil {
			return err
		}
		r.speaker = sp
		out = sp
		if sessions := bfdSessions(r.cfg); len(sessions) > 0 {
			b, err := bfd.New(bfd.Config{ListenAddrs: bfdListen(sessions), Sessions: sessions, OnChange: r.bfdChanged}, r.log.With("part", "bfd"))
			if err != nil {
				return err
			}
			r.bfd = b
		}
	}
	hc, err := healthConfig(r.cfg, dns.Addrs(), dns.ExpiredZones, r.loadDrained())
	if err != nil {
		return err
	}
	mon, err := health.New(hc, out, r.log.With("part", "health"))
	if err != nil {
		return err
	}
	r.health = mon
	r.running.Go(func() { mon.Run(ctx) })
	if sp := r.speaker; sp != nil {
		r.running.Go(func() {
			// Sessions start once the link addresses are usable
			// (IPv6 duplicate address detection takes a second);
			// a dial from a tentative address would hang until its
			// timeout and back off.
			if r.net != nil && !r.net.Settle(ctx, 5*time.Second) {
				r.log.Warn("network: addresses still tentative after 5s; starting BGP anyway")
			}
			if err := sp.Run(ctx); err != nil {
				r.log.Error("bgp speaker stopped", "err", err)
			}
		})
	}
	if b := r.bfd; b != nil {
		r.running.Go(func() {
			if err := b.Run(ctx); err != nil {
				r.log.Error("bfd stopped", "err", err)
			}
		})
	}
	return nil
}

// Wait returns once everything StartNetwork, Start and StartHost started
// has ended (their context is done): the speaker has sent its CEASEs and
// closed its connections, BFD and the network manager have let go of
// their sockets. A runtime restarted in-process (reconfig) calls it
// before the next one starts, or the two would run side by side: two
// speakers dialing the same neighbours (corebgp's process-wide logger
// then feeds the old one's events to the new one's peers), two BFD
// servers on one port.
func (r *Routing) Wait() { r.running.Wait() }

// noAnnouncer is the health monitor's output on a node without BGP.
type noAnnouncer struct{}

func (noAnnouncer) SetRoutes([]bgp.Route) error { return nil }

// bfdChanged takes a BGP session down when its BFD session fails (RFC
// 5882): the neighbour sees the same failure and drops our routes within
// the detection time, and so do we instead of waiting out the hold time.
// A neighbour that goes AdminDown is not a failure (RFC 5882 §3.2).
func (r *Routing) bfdChanged(ev bfd.Event) {
	if ev.From != bfd.Up || ev.To == bfd.Up || ev.Remote == bfd.AdminDown || r.speaker == nil {
		return
	}
	reason := fmt.Sprintf("BFD down: %s", ev.Diag)
	go func() {
		if err := r.speaker.DropSession(ev.Name, reason); err != nil {
			r.log.Error("bfd: dropping session", "peer", ev.Name, "err", err)
		}
	}()
}

// Drain runs before any planned stop, while DNS still answers: announced
// prefixes get GRACEFUL_SHUTDOWN, then are withdrawn, and the node goes on
// answering for the linger time.
func (r *Routing) Drain() {
	if r.health == nil {
		return
	}
	start := time.Now()
	r.health.Stop(context.Background())
	r.log.Info("drained", "took", time.Since(start).Round(time.Millisecond))
}

// Maintain drains (drain) or restores a prefix by hand (the zero prefix:
// every prefix), and keeps the set of drained prefixes across restarts.
// An unknown prefix is health.ErrUnknownPrefix.
func (r *Routing) Maintain(drain bool, p netip.Prefix) error {
	if r.health == nil {
		return fmt.Errorf("routing not started")
	}
	var err error
	if drain {
		err = r.health.Drain(p)
	} else {
		err = r.health.Restore(p)
	}
	if err != nil {
		return err
	}
	r.saveDrained()
	return nil
}

func (r *Routing) loadDrained() []netip.Prefix {
	b, err := r.meta.GetMeta(metaBucket, metaDrained)
	if err != nil {
		return nil
	}
	var ps []netip.Prefix
	if err := json.Unmarshal(b, &ps); err != nil {
		r.log.Warn("stored maintenance state unreadable; ignored", "err", err)
		return nil
	}
	if len(ps) > 0 {
		r.log.Warn("prefixes stay drained from before the restart; `shoestring ctl restore` announces them", "prefixes", ps)
	}
	return ps
}

func (r *Routing) saveDrained() {
	b, _ := json.Marshal(r.health.Maintained())
	if err := r.meta.PutMeta(metaBucket, metaDrained, b); err != nil {
		r.log.Error("saving maintenance state", "err", err)
	}
}

// Serving reports whether the DNS server answers its own liveness queries
// (health.Monitor.Alive): true before Start, as nothing is known yet.
func (r *Routing) Serving() (bool, string) {
	if r.health == nil {
		return true, "ok"
	}
	return r.health.Alive()
}

// Announcing reports whether routing does what it is configured to: every
// configured BGP session Established and every prefix whose checks pass
// announced (a prefix in maintenance is not expected to be). Without BGP
// there is nothing to announce.
func (r *Routing) Announcing() (bool, string) {
	if r.speaker == nil {
		return true, "no BGP configured"
	}
	var down []string
	for _, s := range r.speaker.Status() {
		if s.State != bgp.StateEstablished {
			down = append(down, fmt.Sprintf("session %s %s", s.Name, s.State))
		}
	}
	if r.health != nil {
		for _, p := range r.health.Status() {
			if p.Healthy && !p.Maintenance && p.State != health.Announced {
				down = append(down, fmt.Sprintf("prefix %v %s", p.Prefix, p.State))
			}
		}
	}
	if len(down) > 0 {
		slices.Sort(down)
		return false, strings.Join(down, "; ")
	}
	return true, "sessions established, healthy prefixes announced"
}

// Sessions returns the BGP sessions; nil without BGP.
func (r *Routing) Sessions() []bgp.PeerStatus {
	if r.speaker == nil {
		return nil
	}
	return r.speaker.Status()
}

// BFD returns the BFD sessions; nil without any.
func (r *Routing) BFD() []bfd.SessionStatus {
	if r.bfd == nil {
		return nil
	}
	return r.bfd.Status()
}

// Prefix is one configured prefix: its health and announcement state, and
// the attributes it is announced with.
type Prefix struct {
	health.PrefixStatus
	Announce config.Announce
}

// Prefixes returns every configured prefix in configuration order.
func (r *Routing) Prefixes() []Prefix {
	if r.health == nil {
		return nil
	}
	var out []Prefix
	for _, s := range r.health.Status() {
		out = append(out, Prefix{PrefixStatus: s, Announce: r.attrs[s.Prefix]})
	}
	return out
}

// Network returns the networking's state; false when the node does not
// manage networking (the network section is empty).
func (r *Routing) Network() (netconf.Status, bool) {
	if r.net == nil {
		return netconf.Status{}, false
	}
	return r.net.Status(), true
}
