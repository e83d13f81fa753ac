// Package metrics is the node's Prometheus metrics, served at /metrics on
// the management API (so on the tailnet only).
//
// Nothing here sits on the query path: the DNS server keeps its own
// per-worker counters (dnsserver/metrics.go) and this package reads and sums
// them when Prometheus scrapes. Everything else — zones, BGP sessions,
// health checks, the tailnet, dnstap — is read from its owner at scrape
// time through Sources, so a subsystem a node does not run simply exports
// nothing. Subsystems with events to count (zone transfers) call
// TransferDone, and any subsystem may add collectors of its own with
// Register.
package metrics

import (
	"net/http"
	"runtime"
	"time"

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
	// freshness, the tailnet and dnstap (the status page's data).
	Overview func() api.Overview
	Ready    func() bool
}

// Build identifies the firmware.
type Build struct {
	Version string
	// Slot is the A/B slot booted from, when the node knows it.
	Slot string
}

// Registry is the node's metrics.
type Registry struct {
	reg             *prometheus.Registry
	transfers       *prometheus.CounterVec
	transferSeconds *prometheus.HistogramVec
	transferLast    *prometheus.GaugeVec
}

// Transfer is one zone transfer, in or out, as the secondary service
// reports it.
type Transfer struct {
	Zone string
	// Direction is "in" (from a primary) or "out" (to a secondary).
	Direction string
	// Kind is "axfr", "ixfr", or "soa" for a refresh check that found
	// nothing new.
	Kind string
	// Outcome is "ok", "up-to-date", "refused", "notauth", "timeout",
	// "rejected" (the zone failed validation) or "error".
	Outcome  string
	Duration time.Duration
}

// New builds the registry: the Go runtime's memory and GC, the process,
// the build, and the node's own collector.
func New(src Sources, b Build) *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoestring_zone_transfers_total",
			Help: "Zone transfers by zone, direction (in, out), kind (axfr, ixfr, soa) and outcome.",
		}, []string{"zone", "direction", "kind", "outcome"}),
		transferSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shoestring_zone_transfer_duration_seconds",
			Help:    "How long zone transfers took, by direction and kind.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 9), // 5 ms … 5.5 min
		}, []string{"direction", "kind"}),
		transferLast: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shoestring_zone_transfer_last_success_timestamp_seconds",
			Help: "When a transfer of the zone last succeeded, by direction.",
		}, []string{"zone", "direction"}),
	}
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
		r.transfers, r.transferSeconds, r.transferLast,
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

// TransferDone counts one transfer.
func (r *Registry) TransferDone(t Transfer) {
	r.transfers.WithLabelValues(t.Zone, t.Direction, t.Kind, t.Outcome).Inc()
	if t.Duration > 0 {
		r.transferSeconds.WithLabelValues(t.Direction, t.Kind).Observe(t.Duration.Seconds())
	}
	if t.Outcome == "ok" || t.Outcome == "up-to-date" {
		r.transferLast.WithLabelValues(t.Zone, t.Direction).SetToCurrentTime()
	}
}
