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

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
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
}

// Run serves until ctx ends, then drains and stops every tenant.
func Run(ctx context.Context, opts Options) error {
	cfg, log := opts.Config, opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// Listen first: a second host started by mistake stops here, before
	// its network configuration takes the first one's addresses away.
	ln, err := net.Listen("tcp", string(cfg.Management.Listen))
	if err != nil {
		return fmt.Errorf("management listen: %w", err)
	}
	defer ln.Close()
	life, end := context.WithCancel(context.Background())
	defer end()
	rt := routing.New(cfg, nil, log)
	if err := rt.StartHost(life); err != nil {
		return err
	}
	sup, err := tenant.New(tenant.Options{Config: cfg.Tenants, Routing: rt, Binary: opts.Binary, Log: log.With("part", "tenants")})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	api.TenantRoutes(mux, sup, log)
	api.RoutingRoutes(mux, rt, log)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	if opts.OnReady != nil {
		opts.OnReady(ln.Addr().String())
	}
	log.Info("host up", "management", ln.Addr().String())
	return sup.Run(ctx)
}
