// Package node is the node runtime: it constructs the subsystems from the
// config and connects them — the store, the zones (package zones: the one
// path every zone update takes), the DNS server, the secondary service
// (package secondary), routing, the overlay and the management API
// (package api) — and runs them until it is stopped. Zone data flows one
// way: importers, transfers and the API write the store through package
// zones, the store's content is built into snapshots, the DNS server
// reads only snapshots.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/firmware/secondary"
	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/zones"
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
	sec     *secondary.Service // nil when its config does not build
	started time.Time
	ready   atomic.Bool

	httpAddr string

	rt routing      // routing.go: network, BGP, BFD, health, drain
	ov overlayState // overlay.go: tailnet, access, metrics, dnstap, recent logs
}

// New returns a node; Run starts it.
func New(opts Options) *Node {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	n := &Node{opts: opts, cfg: opts.Config}
	n.log = n.keepLogs(opts.Logger) // overlay.go: recent lines for the status page
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

	n.zones = zones.New(zones.Options{Store: st, Log: n.log, MemoryTarget: n.cfg.Secondary.Limits.MemoryTarget})
	// The secondary service answers NOTIFY and AXFR/IXFR for the DNS
	// server, and sends NOTIFY and produces its catalog as zones change.
	if n.sec, err = secondary.NewService(&n.cfg.Secondary, n.zones, secondary.Options{State: st, Dial: n.overlayDial, Log: n.log}); err != nil {
		// The config was checked; a key that still fails is a bug. Serve
		// without the secondary service rather than not at all.
		n.log.Error("secondary service disabled", "err", err)
		n.sec = nil
	}
	var transfers dnsserver.TransferHandler
	if n.sec != nil {
		transfers = n.sec
	}
	var listen []string
	for _, l := range n.cfg.DNS.Listen {
		listen = append(listen, string(l))
	}
	n.dns = dnsserver.New(dnsserver.Config{
		Listen:         listen,
		Identity:       n.cfg.Node.Name,
		NSID:           n.cfg.DNS.NSID,
		Version:        n.cfg.DNS.Version,
		MaxUDPSize:     n.cfg.DNS.MaxUDPSize,
		UDPWorkers:     n.cfg.DNS.UDPWorkers,
		TCPIdleTimeout: time.Duration(n.cfg.DNS.TCPIdleTimeout),
		TCPMaxConns:    n.cfg.DNS.TCPMaxConns,
		Logger:         n.log,
		Transfers:      transfers,
	})
	// Serve what the store holds before anything else: a box that reboots
	// answers at once, before any import or transfer.
	if err := n.zones.Load(n.dns); err != nil {
		return err
	}
	// Subsystems live until Run returns, not until ctx ends: on a planned
	// stop the node drains (routing withdraws) while DNS keeps answering.
	life, endLife := context.WithCancel(context.Background())
	defer endLife()
	// The service addresses must be on the box before DNS binds them.
	if err := n.startNetwork(life); err != nil {
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

	// Subsystems: the secondary service (transfers, NOTIFY, catalogs),
	// routing.go (network, BGP, health, drain), overlay.go (tailnet,
	// metrics, dnstap).
	if n.sec != nil {
		if err := n.sec.Start(life); err != nil {
			return err
		}
	}
	for _, start := range []func(context.Context) error{n.startRouting, n.startOverlay} {
		if err := start(life); err != nil {
			return err
		}
	}

	mux := api.Handler(n, n.zones, n.log)
	if n.sec != nil {
		api.SecondaryRoutes(mux, n.sec, n.log)
	}
	n.routingRoutes(mux)
	n.overlayRoutes(mux)
	if n.opts.Routes != nil {
		n.opts.Routes(mux)
	}
	listeners, err := n.managementListeners(life)
	if err != nil {
		return fmt.Errorf("management listen: %w", err)
	}
	srv := &http.Server{Handler: n.guard(mux), ReadHeaderTimeout: 10 * time.Second}
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
	<-ctx.Done()
	n.log.Info("stopping: draining first")
	// drain (routing.go) withdraws the node's prefixes gracefully while
	// DNS goes on answering; only then does anything stop.
	n.drain()
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

// Healthy reports whether the node answers: listeners up, zones loaded,
// and its DNS server answering its own health checks (routing.go).
func (n *Node) Healthy() (bool, string) {
	if !n.ready.Load() {
		return false, "starting"
	}
	return n.routingHealthy()
}

// memory reads the runtime's figures and the resident set size.
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
	return mem
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
