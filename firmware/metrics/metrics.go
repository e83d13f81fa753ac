// Package metrics is the node's Prometheus metrics, served at /metrics on
// the management API (so on the tailnet only).
//
// Nothing here sits on the query path: the DNS server keeps its own
// per-worker counters (dnsserver/metrics.go) and this package reads and sums
// them when Prometheus scrapes. Everything else — zones, BGP sessions,
// health checks, the tailnet, dnstap — is read from its owner at scrape
// time through Sources, so a subsystem a node does not run simply exports
// nothing; zone transfers, too, are read from the secondary service's
// counters. Any subsystem may add collectors of its own with Register.
// README.md lists every series.
package metrics

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
)

// Sources are read at each scrape; a nil source exports nothing.
type Sources struct {
	DNS      func() dnsserver.QueryMetrics
	DNSStats func() *dnsserver.Stats
	Zones    func() ([]api.ZoneInfo, error)
	// Overview gives the routing subsystem's sessions, prefixes and
	// health checks, the secondary service's transfers and zone
	// freshness, the tailnet, dnstap and the node's health by part (the
	// status page's data, read directly from each subsystem: it must not
	// wait on the network).
	Overview func() api.Overview
	Ready    func() bool
}

// Build identifies the firmware.
type Build struct {
	Version string
	// Slot is the A/B slot booted from ("A" or "B"), when the node
	// knows it (PID 1 does); empty otherwise.
	Slot string
}

// Registry is the node's metrics.
type Registry struct {
	reg *prometheus.Registry
}

// New builds the registry: the Go runtime's memory and GC, the process,
// the build, and the node's own collector.
func New(src Sources, b Build) *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	if b.Version == "" {
		b.Version = "unknown"
	}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "shoestring_build_info",
			Help:        "The firmware build: always 1, labelled with version, Go version and boot slot.",
			ConstLabels: prometheus.Labels{"version": b.Version, "goversion": runtime.Version(), "slot": b.Slot},
		}, func() float64 { return 1 }),
		&nodeCollector{src: src},
	)
	return r
}

// Handler serves the metrics in Prometheus' text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}

// Gatherer exposes the registry to tests and to ctl's summary.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Register adds a subsystem's own collectors.
func (r *Registry) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := r.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
