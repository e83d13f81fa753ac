package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/shoestring-dns/shoestring/firmware/bfd"
	"github.com/shoestring-dns/shoestring/firmware/bgp"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/netconf"
	"github.com/shoestring-dns/shoestring/firmware/routing"
)

// The routing endpoints (the types they return are in routing.go):
//
//	GET  /api/v1/routing            Routing: everything below at once
//	GET  /api/v1/routing/sessions   []BGPSession
//	GET  /api/v1/routing/prefixes   []Prefix
//	GET  /api/v1/routing/network    Network; 404 when the node does not manage networking
//	POST /api/v1/routing/drain      Maintenance → []Prefix
//	POST /api/v1/routing/restore    Maintenance → []Prefix

// RoutingBackend is what the routing endpoints read and change:
// *routing.Routing.
type RoutingBackend interface {
	Sessions() []bgp.PeerStatus
	BFD() []bfd.SessionStatus
	Prefixes() []routing.Prefix
	Network() (netconf.Status, bool)
	// Maintain drains or restores a prefix (the zero prefix: all); an
	// unknown one is health.ErrUnknownPrefix.
	Maintain(drain bool, p netip.Prefix) error
}

// RoutingRoutes adds the routing endpoints to mux.
func RoutingRoutes(mux *http.ServeMux, b RoutingBackend, log *slog.Logger) {
	mux.HandleFunc("GET /api/v1/routing", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, NewRouting(b))
	})
	mux.HandleFunc("GET /api/v1/routing/sessions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, NewSessions(b.Sessions(), b.BFD()))
	})
	mux.HandleFunc("GET /api/v1/routing/prefixes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, NewPrefixes(b.Prefixes()))
	})
	mux.HandleFunc("GET /api/v1/routing/network", func(w http.ResponseWriter, r *http.Request) {
		st, ok := b.Network()
		if !ok {
			writeJSON(w, http.StatusNotFound, Error{Error: "the network section is empty: the node does not manage networking"})
			return
		}
		writeJSON(w, http.StatusOK, NewNetwork(st))
	})
	maint := func(drain bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req Maintenance
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
			if err == nil && len(bytes.TrimSpace(body)) > 0 {
				err = json.Unmarshal(body, &req)
			}
			if err != nil {
				writeJSON(w, http.StatusBadRequest, Error{Error: "body: " + err.Error()})
				return
			}
			var pfx netip.Prefix
			if req.Prefix != "" && req.Prefix != "all" {
				p, err := config.ParsePrefixOrAddr(req.Prefix)
				if err != nil {
					writeJSON(w, http.StatusBadRequest, Error{Error: err.Error()})
					return
				}
				pfx = p
			}
			if err := b.Maintain(drain, pfx); err != nil {
				code := http.StatusInternalServerError
				if errors.Is(err, health.ErrUnknownPrefix) {
					code = http.StatusNotFound
				}
				writeJSON(w, code, Error{Error: err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, NewPrefixes(b.Prefixes()))
		}
	}
	mux.HandleFunc("POST /api/v1/routing/drain", maint(true))
	mux.HandleFunc("POST /api/v1/routing/restore", maint(false))
}
