package api

import (
	"net/http"
	"strings"

	"github.com/shoestring-dns/shoestring/firmware/health"
)

// The node's health, part by part (health.Report): in GET /api/v1/status
// as "health", in the overview, on the status page, and by part from
// /healthz:
//
//	GET /healthz                       serving (what the watchdog goes by): 200 or 503
//	GET /healthz?part=bgp&part=...     those parts; part=all for every part

// Health is the node's health: OK when every part is.
type Health struct {
	OK    bool         `json:"ok"`
	Why   string       `json:"why"`
	Parts []HealthPart `json:"parts"`
}

// HealthPart is one part: serving, zones_fresh, bgp, management.
type HealthPart struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	Why  string `json:"why"`
}

// Part returns the named part.
func (h Health) Part(name string) (HealthPart, bool) {
	for _, p := range h.Parts {
		if p.Name == name {
			return p, true
		}
	}
	return HealthPart{}, false
}

// HealthReporter is the optional part of a Backend that reports health by
// part; Backend.Healthy is its serving part.
type HealthReporter interface {
	Health() health.Report
}

// healthReport returns the backend's health report, if it has one.
func (h *handler) healthReport() (health.Report, bool) {
	hr, ok := h.b.(HealthReporter)
	if !ok {
		return health.Report{}, false
	}
	return hr.Health(), true
}

// verdict is /healthz's answer: Healthy, or the parts the query names.
func (h *handler) verdict(r *http.Request) (bool, string) {
	parts := r.URL.Query()["part"]
	rep, ok := h.healthReport()
	if len(parts) == 0 || !ok {
		return h.b.Healthy()
	}
	var ps []health.Part
	for _, p := range parts {
		for _, name := range strings.Split(p, ",") {
			if name == "all" {
				ps = append(ps, health.Parts...)
				continue
			}
			ps = append(ps, health.Part(name))
		}
	}
	return rep.Verdict(ps...)
}

// statusWithHealth is the status with its health parts.
func (h *handler) statusWithHealth() Status {
	s := h.b.Status()
	if rep, ok := h.healthReport(); ok {
		hs := NewHealth(rep)
		s.Health = &hs
	}
	return s
}
