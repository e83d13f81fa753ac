// Package api is the management HTTP API and the status page: JSON under
// /api/v1/, /healthz for probes, and a page a person reads at /. It talks
// to the node's subsystems through small interfaces (Backend, Zones,
// Secondary, RoutingBackend, UpdateBackend, CatchmentBackend) and turns
// what they report into the DTOs it serves; the subsystems never import
// it. It can be served on loopback in dev mode or on the tailnet on a
// real box.
package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// ErrNotFound is what the API answers 404 with (as do zones.ErrNotFound
// and secondary.ErrNotSecondary).
var ErrNotFound = errors.New("not found")

// MaxUpload bounds an uploaded zone file (64 MiB).
const MaxUpload = 64 << 20

// Backend is what the API needs from the node itself; the zones are
// served through Zones (zones.go).
type Backend interface {
	Status() Status
	Healthy() (bool, string)
}

// ZoneInfo is one zone as the API shows it.
type ZoneInfo struct {
	Origin       string    `json:"origin"`
	Serial       uint32    `json:"serial"`
	Records      int       `json:"records"`
	Updated      time.Time `json:"updated"`
	Source       string    `json:"source,omitempty"`
	Serving      bool      `json:"serving"`
	ServedSerial uint32    `json:"served_serial"`
	Problem      string    `json:"problem,omitempty"`
}

// ZoneDetail is one zone with its records in master file form.
type ZoneDetail struct {
	ZoneInfo
	Text string `json:"text"`
}

// Status is the node's identity and counters.
type Status struct {
	Name     string    `json:"name"`
	Location string    `json:"location,omitempty"`
	Started  time.Time `json:"started"`
	Uptime   string    `json:"uptime"`
	Ready    bool      `json:"ready"`
	Listen   []string  `json:"listen"`
	Zones    int       `json:"zones"`
	Queries  uint64    `json:"queries"`
	Fast     uint64    `json:"fast_path"`
	TCPConns int64     `json:"tcp_conns"`
	Memory   Memory    `json:"memory"`
	Problems []string  `json:"problems,omitempty"`
	// Health is the node's health by part (health.go).
	Health *Health `json:"health,omitempty"`
}

// Memory is the process's memory use, in bytes.
type Memory struct {
	RSS uint64 `json:"rss"`
	// PeakRSS is the most the process has held resident since it started
	// (VmHWM): on a box, where the node runs in PID 1, what loading its
	// zones at boot took.
	PeakRSS   uint64 `json:"peak_rss"`
	HeapInuse uint64 `json:"heap_inuse"`
	HeapIdle  uint64 `json:"heap_idle"`
	Released  uint64 `json:"heap_released"`
	Sys       uint64 `json:"sys"`
	GCs       uint32 `json:"gcs"`
}

// Error is the body of every failed call; Errors lists each problem of a
// rejected zone file with its line.
type Error struct {
	Error  string   `json:"error"`
	Errors []string `json:"errors,omitempty"`
}

// Handler returns the API and status page, with the zone endpoints fed by
// zs. Subsystems add their own endpoints to the returned mux.
func Handler(b Backend, zs Zones, log *slog.Logger) *http.ServeMux {
	h := &handler{b: b, zs: zs, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.health)
	mux.HandleFunc("GET /api/v1/status", h.status)
	mux.HandleFunc("GET /api/v1/zones", h.zones)
	mux.HandleFunc("GET /api/v1/zones/{origin}", h.zone)
	mux.HandleFunc("PUT /api/v1/zones/{origin}", h.putZone)
	mux.HandleFunc("DELETE /api/v1/zones/{origin}", h.deleteZone)
	mux.HandleFunc("GET /{$}", h.page)
	return mux
}

type handler struct {
	b   Backend
	zs  Zones
	log *slog.Logger
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (h *handler) fail(w http.ResponseWriter, err error) {
	switch {
	case isNotFound(err):
		writeJSON(w, http.StatusNotFound, Error{Error: err.Error()})
	default:
		var list zone.ErrorList
		if errors.As(err, &list) {
			e := Error{Error: "zone rejected; nothing was changed"}
			for _, x := range list {
				e.Errors = append(e.Errors, x.Error())
			}
			writeJSON(w, http.StatusUnprocessableEntity, e)
			return
		}
		writeJSON(w, http.StatusInternalServerError, Error{Error: err.Error()})
	}
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	ok, why := h.verdict(r)
	if !ok {
		http.Error(w, why, http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, why+"\n")
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.statusWithHealth())
}

func (h *handler) zones(w http.ResponseWriter, r *http.Request) {
	zs, err := ZoneList(h.zs)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, zs)
}

func (h *handler) zone(w http.ResponseWriter, r *http.Request) {
	info, z, err := h.zs.Get(r.PathValue("origin"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ZoneDetail{ZoneInfo: zoneInfo(info), Text: masterText(z)})
}

func (h *handler) putZone(w http.ResponseWriter, r *http.Request) {
	origin := r.PathValue("origin")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxUpload))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, Error{Error: err.Error()})
		return
	}
	zi, err := h.zs.PutText(origin, body, "api")
	if err != nil {
		h.log.Warn("zone upload rejected", "zone", origin, "from", r.RemoteAddr, "err", firstLine(err.Error()))
		h.fail(w, err)
		return
	}
	info := zoneInfo(zi)
	h.log.Info("zone uploaded", "zone", info.Origin, "serial", info.Serial, "records", info.Records, "from", r.RemoteAddr)
	writeJSON(w, http.StatusOK, info)
}

func (h *handler) deleteZone(w http.ResponseWriter, r *http.Request) {
	origin := r.PathValue("origin")
	if err := h.zs.Delete(origin); err != nil {
		h.fail(w, err)
		return
	}
	h.log.Info("zone deleted", "zone", origin, "from", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"deleted": origin})
}

func firstLine(s string) string {
	if line, _, ok := strings.Cut(s, "\n"); ok {
		return line + " …"
	}
	return s
}
