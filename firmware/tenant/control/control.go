// Package control serves a tenant's own management endpoints on the
// control socket its host passed it (package tenant, control.go): its
// metrics, secondary zones (status, refresh), zones, overview and recent
// log lines. The host reaches them at /api/v1/tenants/NAME/... and
// scrapes the metrics for its own /metrics. It wires the api and metrics
// packages over the tenant's subsystems; it computes nothing.
package control

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/dnstap"
	"github.com/shoestring-dns/shoestring/firmware/metrics"
	"github.com/shoestring-dns/shoestring/firmware/tenant"
)

// Serve serves the tenant's endpoints on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, s tenant.ControlSources) error {
	src := &api.Sources{Name: s.Name, Serials: s.DNS.Serials, Logs: s.Logs}
	if s.Secondary != nil {
		src.Secondary = s.Secondary
	}
	if tap := s.Tap; tap != nil {
		src.Dnstap = func() (dnstap.Stats, bool) { return tap.Stats(), true }
	}
	reg := metrics.New(metrics.Sources{
		DNS: s.DNS.QueryMetrics, DNSStats: s.DNS.Stats,
		Zones:    func() ([]api.ZoneInfo, error) { return api.ZoneList(s.Zones) },
		Overview: src.Overview,
		Ready:    func() bool { return true },
	}, metrics.Build{})
	mux := http.NewServeMux()
	api.ManagementRoutes(mux, src, reg.Handler(), s.Log)
	if s.Secondary != nil {
		api.SecondaryRoutes(mux, s.Secondary, s.Log)
	}
	mux.HandleFunc("GET /api/v1/zones", func(w http.ResponseWriter, r *http.Request) {
		list, err := api.ZoneList(s.Zones)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, list)
	})
	mux.HandleFunc("GET /api/v1/logs", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n <= 0 {
			n = 300
		}
		writeJSON(w, s.Logs.Last(n))
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
