package api

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/dnstap"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/logring"
	overlaystatus "github.com/shoestring-dns/shoestring/firmware/overlay/status"
)

// The management overlay's endpoints and the node at a glance:
//
//	GET /metrics            Prometheus (when overlay.metrics is on)
//	GET /api/v1/overview    Overview
//	GET /api/v1/whoami      Caller
//	GET /api/v1/tailnet     Tailnet; 404 when the node is not on a tailnet
//	GET /api/v1/identity    Identity
//
// and the public identity document on service addresses (ServeIdentity).
//
// Every subsystem's endpoints are added to the API one way: a func
// XRoutes(mux, backend, log) in this package (RoutingRoutes,
// SecondaryRoutes, ManagementRoutes), whose backend is a small interface
// the subsystem satisfies with its own status types; this package turns
// them into JSON (convert.go) and writes it with writeJSON.

// TailnetBackend is the node's tailnet membership: *overlay.Member.
type TailnetBackend interface {
	// Status is the last status read, without touching the network;
	// false when the node is not on a tailnet.
	Status() (overlaystatus.Status, bool)
	// LiveStatus asks the tailnet now.
	LiveStatus(ctx context.Context) (overlaystatus.Status, bool)
}

// Sources are where the overview and the identity document are read,
// each part directly from the subsystem that owns it. A nil source leaves
// its part out (that subsystem does not run on the node).
type Sources struct {
	Name, Location, Version string

	Serials   func() map[string]uint32
	Routing   RoutingBackend
	Secondary Secondary
	Tailnet   TailnetBackend
	Dnstap    func() (dnstap.Stats, bool)
	Logs      *logring.Ring
	Health    func() health.Report
	Budget    func() MemoryBudget
}

// overviewLogLines is how many recent log lines the overview carries.
const overviewLogLines = 50

// Overview reads the node's state at a glance. It never waits on the
// network: the tailnet part is the last status read.
func (s *Sources) Overview() Overview {
	o := Overview{Version: s.Version}
	if s.Routing != nil {
		r := NewRouting(s.Routing)
		o.Routing = &r
	}
	if s.Secondary != nil {
		st := SecondaryStatusOf(s.Secondary)
		o.Secondary = &st
	}
	if s.Tailnet != nil {
		if st, ok := s.Tailnet.Status(); ok {
			t := NewTailnet(st)
			o.Tailnet = &t
		}
	}
	if s.Dnstap != nil {
		if st, ok := s.Dnstap(); ok {
			d := NewDnstap(st)
			o.Dnstap = &d
		}
	}
	if s.Health != nil {
		h := NewHealth(s.Health())
		o.Health = &h
	}
	if s.Budget != nil {
		m := s.Budget()
		o.Budget = &m
	}
	if s.Logs != nil {
		o.Logs = NewLogLines(s.Logs.Last(overviewLogLines))
	}
	return o
}

// Identity is the "which node did I reach?" document, now.
func (s *Sources) Identity() Identity {
	id := Identity{Name: s.Name, Location: s.Location, Version: s.Version, Time: time.Now().UTC()}
	if s.Serials != nil {
		id.Serials = s.Serials()
	}
	return id
}

// ManagementRoutes adds the overview, whoami, tailnet and identity
// endpoints to mux, and /metrics when metrics is not nil.
func ManagementRoutes(mux *http.ServeMux, s *Sources, metrics http.Handler, log *slog.Logger) {
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /api/v1/overview", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Overview())
	})
	mux.HandleFunc("GET /api/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		c, _ := CallerFrom(r.Context())
		writeJSON(w, http.StatusOK, c)
	})
	mux.HandleFunc("GET /api/v1/tailnet", func(w http.ResponseWriter, r *http.Request) {
		var st overlaystatus.Status
		ok := false
		if s.Tailnet != nil {
			st, ok = s.Tailnet.LiveStatus(r.Context())
		}
		if !ok {
			writeJSON(w, http.StatusNotFound, Error{Error: "this node is not on a tailnet (overlay.enabled is off)"})
			return
		}
		writeJSON(w, http.StatusOK, NewTailnet(st))
	})
	mux.HandleFunc("GET /api/v1/identity", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Identity())
	})
}

// ServeIdentity serves the identity document over plain HTTP on addr (a
// service address) until ctx ends: GET only, small, time-bounded, the
// same for everyone. Nothing else of the node is reachable there.
func ServeIdentity(ctx context.Context, addr string, identity func() Identity, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		writeJSON(w, http.StatusOK, identity())
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 4 << 10}
	go srv.Serve(ln)
	context.AfterFunc(ctx, func() { srv.Close() })
	log.Info("identity endpoint: serving", "listen", ln.Addr().String())
	return nil
}
