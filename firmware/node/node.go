// Package node is the node runtime: it constructs the subsystems from the
// config and connects them — the store, the zones (package zones: the one
// path every zone update takes), the DNS server, the secondary service
// (package secondary), routing (package routing), the management overlay
// (packages overlay and access), the management API (package api) and
// metrics — and runs them until it is stopped. Each subsystem reads its
// own part of the config; node computes nothing itself. Zone data flows
// one way: importers, transfers and the API write the store through
// package zones, the store's content is built into snapshots, the DNS
// server reads only snapshots.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/access"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/catchment"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/firmware/dnstap"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/logring"
	"github.com/shoestring-dns/shoestring/firmware/metrics"
	"github.com/shoestring-dns/shoestring/firmware/overlay"
	"github.com/shoestring-dns/shoestring/firmware/routing"
	"github.com/shoestring-dns/shoestring/firmware/secondary"
	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/zones"
	"github.com/shoestring-dns/shoestring/ota/agent"
)

// StoreFile is the name of the store inside the data directory.
const StoreFile = "shoestring.db"

// Options configure a node.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Example is imported when the store holds no zones and the config
	// names none, so a fresh dev node has something to answer.
	Example *ExampleZone
	// OnReady is called once the node answers queries and the API is up,
	// with the bound DNS and management addresses.
	OnReady func(dnsAddrs []string, httpAddr string)
	// Routes, when set, adds endpoints to the management API (PID 1 adds
	// its logs and power controls this way).
	Routes func(mux *http.ServeMux)
	// Version is the firmware version, for metrics, dnstap and the status
	// page.
	Version string
	// Slot is the A/B slot the firmware booted from, when known (PID 1
	// passes it), for the metrics' build label.
	Slot string
	// OTA, when set, is where the box's A/B slots are and how it boots
	// (PID 1's, or binary slots beside `shoestring run`): the update
	// endpoints install bundles into the inactive slot (package
	// ota/agent, with the config's ota section). Nil: no updates.
	OTA *agent.Layout
	// OTAOff, with OTA nil, says why there are no updates (PID 1 on a
	// box without a data partition); the update endpoints answer it.
	OTAOff string
	// Reconfig, when set, serves GET/PUT /api/v1/config: the
	// supervisor (package reconfig) that runs this node replaces it with
	// a new config on request.
	Reconfig api.ConfigBackend
	// ClockSynced reports whether the clock is synchronised (PID 1's NTP
	// client); until it is, no DNS cookie is minted. Nil: always.
	ClockSynced func() bool
}

// ExampleZone is a zone shipped with the binary.
type ExampleZone struct {
	Origin string
	Text   []byte
}

// Node is one running node.
type Node struct {
	opts    Options
	cfg     *config.Config
	log     *slog.Logger
	store   *store.Store
	zones   *zones.Zones // every zone served: the one update path
	dns     *dnsserver.Server
	started time.Time
	ready   atomic.Bool

	httpAddr string

	sec  *secondary.Service // transfers, NOTIFY, catalogs; nil when its config does not build
	rt   *routing.Routing   // network, BGP, BFD, health checks, drain
	ov   *overlay.Member    // tailnet, its dial function, management listeners
	logs *logring.Ring      // recent log lines for the status page
	tap  *dnstap.Tap        // nil without overlay.dnstap
	api  *api.Sources       // what the overview, identity and metrics read
}

// recentLogLines is how many log lines the node keeps for the status page.
const recentLogLines = 300

// New returns a node; Run starts it.
func New(opts Options) *Node {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	n := &Node{opts: opts, cfg: opts.Config, logs: logring.New(recentLogLines)}
	n.log = slog.New(n.logs.Handler(opts.Logger.Handler()))
	// The tailnet is joined on first use: the secondary service may dial
	// a primary on it before the overlay is started.
	n.ov = overlay.NewMember(n.cfg, n.log)
	return n
}

// Run serves until ctx is cancelled, then shuts down cleanly.
func (n *Node) Run(ctx context.Context) error {
	n.started = time.Now()
	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, err := store.Open(filepath.Join(n.cfg.DataDir, StoreFile), store.Options{})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	n.store = st
	defer st.Close()
	n.rt = routing.New(n.cfg, st, n.log)
	n.zones = zones.New(zones.Options{Store: st, Log: n.log, MemoryTarget: n.cfg.Secondary.Limits.MemoryTarget, MemoryLimit: n.cfg.DNS.MemoryLimit})
	// The secondary service answers NOTIFY and AXFR/IXFR for the DNS
	// server, and sends NOTIFY and produces its catalog as zones change.
	if n.sec, err = secondary.NewService(&n.cfg.Secondary, n.zones, secondary.Options{State: st, Dial: n.ov.Dial, Log: n.log}); err != nil {
		// The config was checked; a key that still fails is a bug. Serve
		// without the secondary service rather than not at all.
		n.log.Error("secondary service disabled", "err", err)
		n.sec = nil
	}
	var transfers dnsserver.TransferHandler
	if n.sec != nil {
		transfers = n.sec
	}
	dc := dnsserver.FromConfig(n.cfg)
	dc.Logger, dc.Transfers, dc.ClockSynced = n.log, transfers, n.opts.ClockSynced
	n.dns = dnsserver.New(dc)
	// Serve what the store holds before anything else: a box that reboots
	// answers at once, before any import or transfer.
	if err := n.zones.Load(n.dns); err != nil {
		return err
	}
	// Subsystems live until Run returns, not until ctx ends: on a planned
	// stop the node drains (routing withdraws) while DNS keeps answering.
	life, endLife := context.WithCancel(context.Background())
	// Deferred in this order, the routing goroutines have ended (BGP
	// sessions closed, sockets released) when Run returns: an in-process
	// restart (reconfig) starts the next runtime only then.
	defer n.rt.Wait()
	defer endLife()
	// The service addresses must be on the box before DNS binds them.
	if err := n.rt.StartNetwork(life); err != nil {
		return err
	}
	if err := n.dns.Start(life); err != nil {
		return err
	}
	defer n.dns.Close()
	n.log.Info("answering", "zones", n.dns.Zones(), "after", time.Since(n.started).Round(time.Millisecond), "listen", n.dns.Addrs())
	// The records decoded from the store are garbage now; a node with a
	// large zone would otherwise run at several times its steady RSS.
	// Only after the listeners are up: answering comes first.
	zones.ReleaseMemory()

	n.zones.ImportConfigured(n.cfg.Zones)
	if n.opts.Example != nil && len(n.cfg.Zones) == 0 && n.dns.Zones() == 0 {
		if _, err := n.zones.PutText(n.opts.Example.Origin, n.opts.Example.Text, "example"); err != nil {
			n.log.Error("example zone", "err", err)
		}
	}
	// Loading and importing leave parsed records and build scratch behind;
	// hand that memory back now rather than whenever the scavenger gets to
	// it, so a 512 MB box has it for the next big transfer. The store's
	// mapped file pages go too (the data lives in snapshots now): nothing
	// else uses the store yet, so it can be unmapped by reopening it.
	if err := st.Reopen(); err != nil {
		return fmt.Errorf("store: reopening after load: %w", err)
	}
	zones.ReleaseMemory()

	if n.sec != nil {
		if err := n.sec.Start(life); err != nil {
			return err
		}
	}
	if err := n.rt.Start(life, n.dns); err != nil {
		return err
	}
	n.startOverlay(life)

	mux := api.Handler(n, n.zones, n.log)
	if n.sec != nil {
		api.SecondaryRoutes(mux, n.sec, n.log)
	}
	api.RoutingRoutes(mux, n.rt, n.log)
	probes := n.newCatchment()
	defer probes.Close()
	api.CatchmentRoutes(mux, probes, n.log)
	ota := n.newOTA()
	// A nil *agent.Agent must reach UpdateRoutes as a nil interface (its
	// "no updates here" answer), not as a typed nil.
	if ota != nil {
		api.UpdateRoutes(mux, ota, n.opts.OTAOff, n.log)
	} else {
		api.UpdateRoutes(mux, nil, n.opts.OTAOff, n.log)
	}
	if n.opts.Reconfig != nil {
		api.ConfigRoutes(mux, n.opts.Reconfig, n.log)
	}
	var metricsHandler http.Handler
	if n.cfg.Overlay.MetricsOn() {
		metricsHandler = n.newMetrics().Handler()
	}
	api.ManagementRoutes(mux, n.api, metricsHandler, n.log)
	if n.opts.Routes != nil {
		n.opts.Routes(mux)
	}
	listeners, err := n.ov.Listeners()
	if err != nil {
		return fmt.Errorf("management listen: %w", err)
	}
	srv := &http.Server{Handler: access.Guard(mux, n.ov.Resolver(), n.ov.Policy(), n.log), ReadHeaderTimeout: 10 * time.Second}
	for _, ln := range listeners {
		go srv.Serve(ln)
	}
	if len(listeners) > 0 {
		n.httpAddr = listeners[0].Addr().String()
	}
	defer srv.Close()

	if cfgBytes, err := n.cfg.Marshal(); err == nil {
		// The last config that worked, for a box that boots with a bad one.
		if err := st.SaveLastGoodConfig(cfgBytes); err != nil {
			n.log.Warn("saving last good config", "err", err)
		}
	}
	n.ready.Store(true)
	if n.opts.OnReady != nil {
		n.opts.OnReady(n.dns.Addrs(), n.httpAddr)
	}
	if ota != nil {
		// A firmware booted on trial proves itself before it is
		// committed (package ota/agent decides; the node only answers).
		go ota.Soak(life, agent.TrialChecks{Health: n.Health, SelfTest: n.selfTest})
	}
	<-ctx.Done()
	n.log.Info("stopping: draining first")
	// Routing withdraws the node's prefixes gracefully while DNS goes on
	// answering; only then does anything stop.
	n.rt.Drain()
	n.ready.Store(false)
	n.log.Info("shutting down")
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shut)
	return nil
}

// Status says who the node is and how it is doing.
func (n *Node) Status() api.Status {
	st := n.dns.Stats()
	s := api.Status{
		Name:     n.cfg.Node.Name,
		Location: n.cfg.Node.Location,
		Started:  n.started,
		Uptime:   time.Since(n.started).Round(time.Second).String(),
		Ready:    n.ready.Load(),
		Listen:   n.dns.Addrs(),
		Zones:    n.dns.Zones(),
		Queries:  st.Queries.Load(),
		Fast:     st.Fast.Load(),
		TCPConns: st.TCPConns.Load(),
		Memory:   memory(),
	}
	if p := n.zones.Problems(); len(p) > 0 {
		s.Problems = p
	}
	return s
}

// Health is the node's health by part (health.Report): serving, zones
// fresh, BGP, management. Until the node is ready every part is
// "starting" (and nothing else is read: the subsystems are being built).
func (n *Node) Health() health.Report {
	src := health.Sources{Ready: n.ready.Load}
	if n.ready.Load() {
		src.Expired = n.dns.ExpiredZones
		src.Alive, src.Announcing = n.rt.Serving, n.rt.Announcing
		src.Reachable = n.ov.Reachable
	}
	return src.Report()
}

// Healthy is the Serving part of Health: the node is up and its DNS
// server answers its own liveness queries. The hardware watchdog and
// /healthz go by it; a reset would not fix any other part.
func (n *Node) Healthy() (bool, string) { return n.Health().Verdict(health.Serving) }

// Overview is what the status page shows besides the zones, read directly
// from each subsystem.
func (n *Node) Overview() api.Overview {
	if n.api == nil {
		return api.Overview{Version: n.opts.Version}
	}
	return n.api.Overview()
}

// memory reads the runtime's figures, the resident set size and its
// peak.
func memory() api.Memory {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	mem := api.Memory{HeapInuse: m.HeapInuse, HeapIdle: m.HeapIdle, Released: m.HeapReleased, Sys: m.Sys, GCs: m.NumGC}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		var size, rss uint64
		if _, err := fmt.Sscan(string(b), &size, &rss); err == nil {
			mem.RSS = rss * uint64(os.Getpagesize())
		}
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				var kb uint64
				if _, err := fmt.Sscan(rest, &kb); err == nil {
					mem.PeakRSS = kb << 10
				}
				break
			}
		}
	}
	return mem
}

// startOverlay joins the tailnet (serving DNS there), starts dnstap and
// the identity endpoint, and gathers what the overview reads. None of it
// may stop the node from serving DNS.
func (n *Node) startOverlay(ctx context.Context) {
	o := n.cfg.Overlay
	n.ov.Run(ctx, n.dns)
	if o.Dnstap.Target != "" {
		n.tap = dnstap.New(dnstap.Options{
			Target:   o.Dnstap.Target,
			Dial:     n.ov.Dial,
			Identity: n.cfg.Node.Name,
			Version:  n.opts.Version,
			Queue:    o.Dnstap.Queue,
			Log:      n.log,
		})
		n.dns.SetTap(n.tap)
		go n.tap.Run(ctx)
	}
	n.api = &api.Sources{
		Name: n.cfg.Node.Name, Location: n.cfg.Node.Location, Version: n.opts.Version,
		Serials: n.dns.Serials,
		Routing: n.rt,
		Tailnet: n.ov,
		Logs:    n.logs,
		Health:  n.Health,
		Budget: func() api.MemoryBudget {
			m := n.zones.MemoryStatus()
			return api.MemoryBudget{LimitBytes: m.Limit, HeapBytes: m.Heap, Refused: m.Refused}
		},
	}
	if n.sec != nil {
		n.api.Secondary = n.sec
	}
	if tap := n.tap; tap != nil {
		n.api.Dnstap = func() (dnstap.Stats, bool) { return tap.Stats(), true }
	}
	for _, addr := range o.Identity.Listen {
		if err := api.ServeIdentity(ctx, string(addr), n.api.Identity, n.log); err != nil {
			n.log.Error("identity endpoint: not serving", "listen", addr, "err", err)
		}
	}
}

// OTAStateFile is the OTA agent's file (the last update's outcome)
// inside the data directory.
const OTAStateFile = "ota/update.json"

// selfTest asks this node's DNS server for every zone's SOA
// (health.SelfTest), for the OTA commit.
func (n *Node) selfTest(ctx context.Context, serials map[string]uint32) error {
	addr, err := health.SelfAddr(n.dns.Addrs())
	if err != nil {
		return err
	}
	return health.SelfTest(ctx, addr, n.cfg.DNS.NSID, serials)
}

// newOTA builds the OTA agent over the box's slots, nil without them.
func (n *Node) newOTA() *agent.Agent {
	if n.opts.OTA == nil {
		return nil
	}
	keys, kerr := agent.LoadKeys(n.cfg.OTA.Keys)
	if kerr != nil {
		n.log.Error("ota: every update will be refused", "err", kerr)
	}
	a, err := agent.New(agent.Config{
		Layout: *n.opts.OTA, Keys: keys, KeysError: kerr,
		Running: n.opts.Version, AllowDowngrade: n.cfg.OTA.AllowDowngrade,
		Soak: time.Duration(n.cfg.OTA.Soak), Serials: n.dns.Serials,
		OnCommit: func() {
			if err := store.DropSnapshots(filepath.Join(n.cfg.DataDir, StoreFile)); err != nil {
				n.log.Warn("ota: store snapshots not dropped", "err", err)
			}
		},
		StateFile: filepath.Join(n.cfg.DataDir, OTAStateFile), Log: n.log,
	})
	if err != nil {
		n.log.Error("ota: no updates", "err", err)
		return nil
	}
	return a
}

// newCatchment builds the prober of catchment measurements, sending
// from the configured anycast addresses.
func (n *Node) newCatchment() *catchment.Prober {
	var srcs []netip.Addr
	for _, a := range n.cfg.Network.Anycast {
		srcs = append(srcs, a.Addr)
	}
	return catchment.New(catchment.Options{
		Node: n.cfg.Node.Name, Sources: func() []netip.Addr { return srcs },
		Rate: n.cfg.Catchment.Rate, MaxTargets: n.cfg.Catchment.MaxTargets, Log: n.log,
	})
}

// newMetrics builds the node's metrics, read from each subsystem at scrape.
func (n *Node) newMetrics() *metrics.Registry {
	return metrics.New(metrics.Sources{
		DNS:      n.dns.QueryMetrics,
		DNSStats: n.dns.Stats,
		Zones:    func() ([]api.ZoneInfo, error) { return api.ZoneList(n.zones) },
		Overview: n.Overview,
		Ready:    n.ready.Load,
	}, metrics.Build{Version: n.opts.Version, Slot: n.opts.Slot})
}

// LastGoodConfig reads the config a node last ran with successfully from
// the store in dataDir, for `run` and PID 1 to fall back to when the
// config they were given is bad or missing. It does not create a store
// where there is none.
func LastGoodConfig(dataDir string) (*config.Config, error) {
	path := filepath.Join(dataDir, StoreFile)
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	b, err := st.LastGoodConfig()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return config.Parse(b)
}
