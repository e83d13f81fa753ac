// Package host is the host-mode runtime (`shoestring host`): it wires the
// host's routing (network, the one BGP speaker, BFD), the tenant
// supervisor (package tenant) and the management API over them from one
// config document, and runs them until stopped. It computes nothing
// itself.
package host

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoestring-dns/shoestring/firmware/access"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/metrics"
	"github.com/shoestring-dns/shoestring/firmware/overlay"
	"github.com/shoestring-dns/shoestring/firmware/routing"
	"github.com/shoestring-dns/shoestring/firmware/tenant"
)

// Options configure a host.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Binary is run as each tenant; default: this process's executable.
	Binary string
	// OnReady is called with the management API's address once it
	// listens.
	OnReady func(httpAddr string)
	// Routes, when set, adds endpoints to the management API (PID 1 adds
	// the box's system endpoints).
	Routes func(mux *http.ServeMux)
}

// Run serves until ctx ends, then drains and stops every tenant.
func Run(ctx context.Context, opts Options) error {
	cfg, log := opts.Config, opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// The management API is where a node's is: on the tailnet when the
	// overlay is on (access control by tailnet identity, overlay.access),
	// else on management.listen (loopback). The host serves no DNS of its
	// own, on the tailnet or anywhere: its tenants do.
	ovCfg := *cfg
	noDNS := false
	ovCfg.Overlay.DNS = &noDNS
	ov := overlay.NewMember(&ovCfg, log.With("part", "overlay"))
	var lns []net.Listener
	var err error
	if !cfg.Overlay.Enabled {
		// Listen first: a second host started by mistake stops here,
		// before its network configuration takes the first one's
		// addresses away.
		if lns, err = ov.Listeners(); err != nil {
			return fmt.Errorf("management listen: %w", err)
		}
	}
	life, end := context.WithCancel(context.Background())
	defer end()
	rt := routing.New(cfg, nil, log)
	if err := rt.StartHost(life); err != nil {
		closeAll(lns)
		return err
	}
	if cfg.Overlay.Enabled {
		ov.Run(life, nil)
		if lns, err = ov.Listeners(); err != nil {
			return fmt.Errorf("management listen: %w", err)
		}
	}
	defer closeAll(lns)
	sup, err := tenant.New(tenant.Options{Config: cfg.Tenants, Routing: rt, Binary: opts.Binary, Log: log.With("part", "tenants")})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	api.TenantRoutes(mux, sup, log)
	api.RoutingRoutes(mux, rt, log)
	if cfg.Overlay.MetricsOn() {
		// The host's own series (routing, its runtime) and every
		// tenant's, read over its control socket, with a tenant label.
		src := &api.Sources{Name: cfg.Node.Name, Routing: rt}
		own := metrics.New(metrics.Sources{Overview: src.Overview}, metrics.Build{})
		all := prometheus.Gatherers{own.Gatherer(), metrics.Tenants(sup.Scrape)}
		mux.Handle("GET /metrics", promhttp.HandlerFor(all, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	}
	if opts.Routes != nil {
		opts.Routes(mux)
	}
	srv := &http.Server{Handler: access.Guard(mux, ov.Resolver(), ov.Policy(), log), ReadHeaderTimeout: 10 * time.Second}
	for _, ln := range lns {
		go srv.Serve(ln)
	}
	defer srv.Close()
	if opts.OnReady != nil {
		opts.OnReady(lns[0].Addr().String())
	}
	log.Info("host up", "management", lns[0].Addr().String())
	return sup.Run(ctx)
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}
