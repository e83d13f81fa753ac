// Package node is the node runtime: it opens the store, serves every zone
// in it at once, imports the zone files the config names, and runs the
// management API. Zone data flows one way — importers and the API write
// the store, the store's content is built into snapshots, the DNS server
// reads only snapshots.
package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/zone"
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
	dns     *dnsserver.Server
	started time.Time
	ready   atomic.Bool

	mu       sync.Mutex // serialises zone changes: store write, then swap
	problems map[string]string
	httpAddr string

	sec *secondaryState // secondary.go: transfers, NOTIFY, catalogs
	rt  routing         // routing.go: network, BGP, BFD, health, drain
	ov  overlayState    // overlay.go: tailnet, access, metrics, dnstap, recent logs
}

// New returns a node; Run starts it.
func New(opts Options) *Node {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	n := &Node{opts: opts, cfg: opts.Config, problems: map[string]string{}}
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

	// Serve what the store holds before anything else: a box that reboots
	// answers at once, before any import or transfer.
	snaps, err := n.loadAll()
	if err != nil {
		return err
	}
	var listen []string
	for _, l := range n.cfg.DNS.Listen {
		listen = append(listen, string(l))
	}
	n.dns = dnsserver.New(withAbuse(n.cfg.DNS.DNSAbuse, n.opts.ClockSynced, dnsserver.Config{
		Listen:         listen,
		Identity:       n.cfg.Node.Name,
		NSID:           n.cfg.DNS.NSID,
		Version:        n.cfg.DNS.Version,
		MaxUDPSize:     n.cfg.DNS.MaxUDPSize,
		UDPWorkers:     n.cfg.DNS.UDPWorkers,
		TCPIdleTimeout: time.Duration(n.cfg.DNS.TCPIdleTimeout),
		TCPMaxConns:    n.cfg.DNS.TCPMaxConns,
		Logger:         n.log,
		Transfers:      n.transferHandler(),
	}))
	n.dns.Replace(snaps)
	snaps = nil
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
	n.releaseMemory()

	n.importConfigured()
	if n.opts.Example != nil && len(n.cfg.Zones) == 0 && n.dns.Zones() == 0 {
		if _, err := n.PutZoneText(n.opts.Example.Origin, n.opts.Example.Text, "example"); err != nil {
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
	n.releaseMemory()

	// Subsystems, each in its own file: secondary.go (transfers, NOTIFY,
	// catalogs), routing.go (network, BGP, health, drain), overlay.go
	// (tailnet, metrics, dnstap).
	for _, start := range []func(context.Context) error{n.startSecondary, n.startRouting, n.startOverlay} {
		if err := start(life); err != nil {
			return err
		}
	}

	mux := api.Handler(n, n.log)
	n.secondaryRoutes(mux)
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
		if err := st.PutMeta("config", "last-good", cfgBytes); err != nil {
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

// loadAll builds snapshots of every zone in the store, using every core.
func (n *Node) loadAll() ([]*dnsserver.Zone, error) {
	type job struct {
		z    *zone.Zone
		info store.Info
	}
	jobs := make(chan job, 64)
	var (
		mu    sync.Mutex
		snaps []*dnsserver.Zone
		wg    sync.WaitGroup
	)
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				s, err := dnsserver.Build(j.z)
				mu.Lock()
				if err != nil {
					n.problems[j.info.Origin] = err.Error()
					n.log.Error("zone in store does not build; not served", "zone", j.info.Origin, "err", err)
				} else {
					snaps = append(snaps, s)
				}
				mu.Unlock()
			}
		}()
	}
	err := n.store.ForEachZone(func(z *zone.Zone, info store.Info) error {
		jobs <- job{z, info}
		return nil
	})
	close(jobs)
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("loading zones from store: %w", err)
	}
	return snaps, nil
}

// importConfigured imports the zone files the config names. A file that
// does not parse or validate leaves the stored version serving.
func (n *Node) importConfigured() {
	for _, zc := range n.cfg.Zones {
		origin := zone.Canonical(zc.Origin)
		z, err := zone.ParseFile(zc.File, origin)
		if err == nil {
			_, err = n.putZone(z, "file")
		}
		if err != nil {
			n.setProblem(origin, err.Error())
			served := "not served"
			if n.dns.Zone(origin) != nil {
				served = "the previous version keeps serving"
			}
			n.log.Error("zone file rejected; "+served, "zone", origin, "file", zc.File, "err", err)
			continue
		}
		n.setProblem(origin, "")
	}
}

func (n *Node) setProblem(origin, p string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p == "" {
		delete(n.problems, origin)
	} else {
		n.problems[origin] = p
	}
}

// putZone stores a zone and swaps its snapshot in. The snapshot is built
// first, so a zone the server cannot index never reaches the store; the
// store (which validates, and writes only the RRsets that changed) is
// written before the swap, so what is answered is always what a reboot
// would answer.
func (n *Node) putZone(z *zone.Zone, source string) (store.Info, error) {
	snap, err := dnsserver.Build(z)
	if err != nil {
		return store.Info{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	info, err := n.store.PutZoneFrom(z, source)
	if err != nil {
		return store.Info{}, err
	}
	n.dns.Put(snap)
	n.zoneChanged(z.Origin, source)
	return info, nil
}

// PutZoneText parses, validates, stores and serves a zone from master
// file text (the API's upload). A bad file changes nothing.
func (n *Node) PutZoneText(origin string, text []byte, source string) (api.ZoneInfo, error) {
	origin = zone.Canonical(origin)
	z, err := zone.Parse(bytes.NewReader(text), origin, origin+" (upload)", "")
	if err != nil {
		return api.ZoneInfo{}, err
	}
	info, err := n.putZone(z, source)
	if err != nil {
		return api.ZoneInfo{}, err
	}
	n.setProblem(origin, "")
	return n.zoneInfo(info), nil
}

// DeleteZone stops serving a zone and removes it from the store.
func (n *Node) DeleteZone(origin string) error {
	origin = zone.Canonical(origin)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.store.DeleteZone(origin); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return api.ErrNotFound
		}
		return err
	}
	n.dns.Delete(origin)
	delete(n.problems, origin)
	n.zoneChanged(origin, "")
	return nil
}

// Zones lists every zone with what the store and the server know of it.
func (n *Node) Zones() ([]api.ZoneInfo, error) {
	infos, err := n.store.List()
	if err != nil {
		return nil, err
	}
	out := make([]api.ZoneInfo, 0, len(infos))
	for _, in := range infos {
		out = append(out, n.zoneInfo(in))
	}
	return out, nil
}

func (n *Node) zoneInfo(in store.Info) api.ZoneInfo {
	zi := api.ZoneInfo{Origin: in.Origin, Serial: in.Serial, Records: in.Records, Updated: in.Updated, Source: in.Source}
	if s := n.dns.Zone(in.Origin); s != nil {
		zi.Serving = true
		zi.ServedSerial = s.Serial()
	}
	n.mu.Lock()
	zi.Problem = n.problems[in.Origin]
	n.mu.Unlock()
	return zi
}

// Zone returns one zone and its records in master file form.
func (n *Node) Zone(origin string) (api.ZoneInfo, string, error) {
	origin = zone.Canonical(origin)
	z, err := n.store.Zone(origin)
	if errors.Is(err, store.ErrNotFound) {
		return api.ZoneInfo{}, "", api.ErrNotFound
	}
	if err != nil {
		return api.ZoneInfo{}, "", err
	}
	info, err := n.store.Info(origin)
	if err != nil {
		return api.ZoneInfo{}, "", err
	}
	var b bytes.Buffer
	for _, rr := range z.Records {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return n.zoneInfo(info), b.String(), nil
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
	n.mu.Lock()
	for o, p := range n.problems {
		s.Problems = append(s.Problems, o+": "+p)
	}
	n.mu.Unlock()
	sort.Strings(s.Problems)
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

// releaseMemory returns freed heap to the OS. sync.Pool contents (bbolt
// pools its write buffers) survive one collection in the pools' victim
// caches, so one GC runs before FreeOSMemory's own.
func (n *Node) releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}
