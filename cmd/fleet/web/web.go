package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/catchment"
	"github.com/shoestring-dns/shoestring/cmd/fleet/desired"
	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
	"github.com/shoestring-dns/shoestring/cmd/fleet/serial"
	"github.com/shoestring-dns/shoestring/cmd/fleet/store"
)

// Server serves the controller's API and pages.
type Server struct {
	KV     store.KV
	Poller *live.Poller
	Runner *rollout.Runner
	SOA    serial.SOA
	Client live.Client
	// Catchment runs catchment measurements (nil: none).
	Catchment *catchment.Runner
	Log       *slog.Logger
	Timeout   time.Duration // for correct (default 90 s)
	// Role is this controller's part among several sharing an etcd
	// store; nil: the only controller (bbolt), always acting. A standby
	// serves every read and refuses every change, naming the leader.
	Role Role
	// Store names the state store (shown on the dashboard).
	Store string
}

// Role is a controller's part in the leader election.
type Role interface {
	Self() string                               // this controller's name
	Leading() bool                              // this one acts
	Leader(ctx context.Context) (string, error) // the one that acts ("" none)
}

// StartRequest is POST /api/rollouts.
type StartRequest struct {
	Group string `json:"group"`
	// Kind is "firmware" for a bundle (uploaded first: POST
	// /api/bundles) by its id; otherwise a config template.
	Kind     string          `json:"kind,omitempty"`
	Bundle   string          `json:"bundle,omitempty"`
	Template string          `json:"template"`
	Canaries []rollout.Query `json:"canaries,omitempty"`
}

// Handler returns the mux:
//
//	GET  /                          the dashboard
//	GET  /sd                        Prometheus http_sd targets
//	GET  /api/overview              Overview
//	GET  /api/nodes                 []NodeView
//	POST /api/nodes                 add or replace a node (JSON inventory.Node)
//	POST /api/inventory             add or replace the nodes of an inventory YAML file
//	DELETE /api/nodes/{name}
//	POST /api/nodes/{name}/correct  apply the node's desired config now (no gates)
//	GET  /api/groups                []desired.Group
//	PUT  /api/groups/{name}         set a group's first template (?force=1 replaces one: no rollout, no gates)
//	GET  /api/serials               serial.Report
//	GET  /api/rollouts, /api/rollouts/{id}
//	POST /api/bundles               store a firmware bundle (the body) → rollout.BundleInfo
//	POST /api/rollouts              StartRequest
//	POST /api/rollouts/{id}/{keep|revert|resume}
//	GET  /api/quarantine, DELETE /api/quarantine/{release}
//	GET  /api/catchment             []catchment.Measurement, newest first, without their maps
//	POST /api/catchment             catchment.Request → the measurement, running
//	GET  /api/catchment/{id}        a measurement with its map ("latest": the newest finished)
//	GET  /api/catchment/diff?from=A&to=B  catchment.DiffReport (default: the two newest finished)
//
// On a standby every call but GET is refused (503) with the leader's name.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.dashboard)
	mux.HandleFunc("GET /sd", func(w http.ResponseWriter, r *http.Request) {
		nodes, err := s.inv().All()
		if err != nil {
			fail(w, 500, err)
			return
		}
		writeJSON(w, SD(nodes, s.Poller.States()))
	})
	mux.HandleFunc("GET /api/overview", func(w http.ResponseWriter, r *http.Request) {
		ov, err := s.Overview(r.Context())
		if err != nil {
			fail(w, 500, err)
			return
		}
		writeJSON(w, ov)
	})
	mux.HandleFunc("GET /api/nodes", func(w http.ResponseWriter, r *http.Request) {
		ov, err := s.Overview(r.Context())
		if err != nil {
			fail(w, 500, err)
			return
		}
		nodes := []NodeView{}
		for _, site := range ov.Sites {
			nodes = append(nodes, site.Nodes...)
		}
		writeJSON(w, nodes)
	})
	mux.HandleFunc("POST /api/nodes", func(w http.ResponseWriter, r *http.Request) {
		var n inventory.Node
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			fail(w, 400, err)
			return
		}
		if err := s.inv().Put(n); err != nil {
			fail(w, 422, err)
			return
		}
		writeJSON(w, n)
	})
	mux.HandleFunc("POST /api/inventory", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		nodes, err := inventory.Parse(b)
		if err != nil {
			fail(w, 422, err)
			return
		}
		for _, n := range nodes {
			if err := s.inv().Put(n); err != nil {
				fail(w, 500, err)
				return
			}
		}
		writeJSON(w, map[string]int{"nodes": len(nodes)})
	})
	mux.HandleFunc("DELETE /api/nodes/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.inv().Delete(r.PathValue("name")); err != nil {
			fail(w, 500, err)
			return
		}
		writeJSON(w, map[string]string{"deleted": r.PathValue("name")})
	})
	mux.HandleFunc("POST /api/nodes/{name}/correct", s.correct)
	mux.HandleFunc("GET /api/groups", func(w http.ResponseWriter, r *http.Request) {
		gs, err := s.groups().All()
		if err != nil {
			fail(w, 500, err)
			return
		}
		writeJSON(w, gs)
	})
	mux.HandleFunc("PUT /api/groups/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if _, err := s.groups().Get(name); err == nil && r.URL.Query().Get("force") == "" {
			fail(w, 409, errors.New("group "+name+" has a template: change it with a rollout (or ?force=1 to only change what is desired)"))
			return
		}
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		g, err := s.groups().Set(name, string(b))
		if err != nil {
			fail(w, 422, err)
			return
		}
		writeJSON(w, g)
	})
	mux.HandleFunc("GET /api/serials", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, serial.Check(s.Poller.States(), s.SOA))
	})
	mux.HandleFunc("GET /api/rollouts", func(w http.ResponseWriter, r *http.Request) {
		ros, err := s.Runner.All()
		if err != nil {
			fail(w, 500, err)
			return
		}
		writeJSON(w, ros)
	})
	mux.HandleFunc("GET /api/rollouts/{id}", func(w http.ResponseWriter, r *http.Request) {
		ro, err := s.Runner.Get(r.PathValue("id"))
		if err != nil {
			fail(w, 404, err)
			return
		}
		writeJSON(w, ro)
	})
	mux.HandleFunc("POST /api/rollouts", func(w http.ResponseWriter, r *http.Request) {
		var req StartRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(w, 400, err)
			return
		}
		var ro *rollout.Rollout
		var err error
		switch req.Kind {
		case rollout.KindConfig:
			ro, err = s.Runner.Start(req.Group, req.Template, req.Canaries)
		case rollout.KindFirmware:
			ro, err = s.Runner.StartFirmware(req.Group, req.Bundle, req.Canaries)
		default:
			err = fmt.Errorf("kind %q: config (empty) or firmware", req.Kind)
		}
		if err != nil {
			fail(w, 422, err)
			return
		}
		writeJSON(w, ro)
	})
	mux.HandleFunc("POST /api/bundles", func(w http.ResponseWriter, r *http.Request) {
		info, err := s.Runner.Bundles.Put(r.Body)
		if err != nil {
			fail(w, 422, err)
			return
		}
		writeJSON(w, info)
	})
	mux.HandleFunc("POST /api/rollouts/{id}/{action}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var ro *rollout.Rollout
		var err error
		switch r.PathValue("action") {
		case "keep":
			ro, err = s.Runner.Keep(id)
		case "revert":
			ro, err = s.Runner.Revert(id)
		case "resume":
			ro, err = s.Runner.Resume(id)
		default:
			fail(w, 404, errors.New("unknown action "+r.PathValue("action")+": keep, revert or resume"))
			return
		}
		if err != nil {
			fail(w, 409, err)
			return
		}
		writeJSON(w, ro)
	})
	mux.HandleFunc("GET /api/quarantine", func(w http.ResponseWriter, r *http.Request) {
		qs, err := s.Runner.Quarantined()
		if err != nil {
			fail(w, 500, err)
			return
		}
		writeJSON(w, qs)
	})
	mux.HandleFunc("DELETE /api/quarantine/{release}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Runner.ClearQuarantine(r.PathValue("release")); err != nil {
			fail(w, 404, err)
			return
		}
		writeJSON(w, map[string]string{"cleared": r.PathValue("release")})
	})
	if s.Catchment != nil {
		s.catchmentRoutes(mux)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && s.Role != nil && !s.Role.Leading() {
			leader, _ := s.Role.Leader(r.Context())
			if leader == "" {
				leader = "being elected"
			}
			fail(w, 503, fmt.Errorf("controller %s is a standby (read-only); the leader is %s: send changes there", s.Role.Self(), leader))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Controller says which controller answered and which one acts.
type Controller struct {
	Name   string `json:"name"`
	Role   string `json:"role"`   // leader, standby, or single (the only controller)
	Leader string `json:"leader"` // the controller that acts; empty while none does
	Store  string `json:"store"`
}

func (s *Server) controller(ctx context.Context) Controller {
	if s.Role == nil {
		return Controller{Name: "this controller", Role: "single", Leader: "this controller", Store: s.Store}
	}
	c := Controller{Name: s.Role.Self(), Role: "standby", Store: s.Store}
	if s.Role.Leading() {
		c.Role, c.Leader = "leader", c.Name
		return c
	}
	leader, err := s.Role.Leader(ctx)
	if err != nil {
		leader = ""
	}
	c.Leader = leader
	return c
}

func (s *Server) catchmentRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/catchment", func(w http.ResponseWriter, r *http.Request) {
		ms, err := s.Catchment.All()
		if err != nil {
			fail(w, 500, err)
			return
		}
		for _, m := range ms {
			m.Map = nil
		}
		writeJSON(w, ms)
	})
	mux.HandleFunc("POST /api/catchment", func(w http.ResponseWriter, r *http.Request) {
		var req catchment.Request
		if err := json.NewDecoder(io.LimitReader(r.Body, 32<<20)).Decode(&req); err != nil {
			fail(w, 400, err)
			return
		}
		m, err := s.Catchment.Start(req)
		if err != nil {
			fail(w, 422, err)
			return
		}
		writeJSON(w, m)
	})
	mux.HandleFunc("GET /api/catchment/{id}", func(w http.ResponseWriter, r *http.Request) {
		var m *catchment.Measurement
		var err error
		if id := r.PathValue("id"); id == "latest" {
			if m, err = s.Catchment.Latest(); err == nil && m == nil {
				err = errors.New("no finished measurement yet")
			}
		} else {
			m, err = s.Catchment.Get(id)
		}
		if err != nil {
			fail(w, 404, err)
			return
		}
		writeJSON(w, m)
	})
	mux.HandleFunc("GET /api/catchment/diff", func(w http.ResponseWriter, r *http.Request) {
		from, to := r.URL.Query().Get("from"), r.URL.Query().Get("to")
		if from == "" || to == "" {
			ms, err := s.Catchment.All()
			if err != nil {
				fail(w, 500, err)
				return
			}
			var done []string
			for _, m := range ms {
				if m.State == catchment.Done {
					done = append(done, m.ID)
				}
			}
			if len(done) < 2 {
				fail(w, 404, errors.New("diff: fewer than two finished measurements; name them: ?from=ID&to=ID"))
				return
			}
			from, to = done[1], done[0]
		}
		a, err := s.Catchment.Get(from)
		if err != nil {
			fail(w, 404, err)
			return
		}
		b, err := s.Catchment.Get(to)
		if err != nil {
			fail(w, 404, err)
			return
		}
		writeJSON(w, catchment.Diff(a, b))
	})
}

func (s *Server) inv() inventory.Inventory { return inventory.Inventory{KV: s.KV} }
func (s *Server) groups() desired.Groups   { return desired.Groups{KV: s.KV} }

// Overview reads everything the dashboard shows.
func (s *Server) Overview(ctx context.Context) (Overview, error) {
	nodes, err := s.inv().All()
	if err != nil {
		return Overview{}, err
	}
	gs, err := s.groups().All()
	if err != nil {
		return Overview{}, err
	}
	ros, err := s.Runner.All()
	if err != nil {
		return Overview{}, err
	}
	states := s.Poller.States()
	ov := Build(nodes, gs, states, serial.Check(states, s.SOA), ros)
	if s.Catchment != nil {
		if ov.Catchment, err = s.Catchment.Latest(); err != nil {
			return Overview{}, err
		}
	}
	ov.Controller = s.controller(ctx)
	if ov.Controller.Leader == "" {
		ov.Exceptions = append([]string{"no controller leads (an election is under way, or etcd is unreachable): nothing is rolled out"}, ov.Exceptions...)
		if ov.Colour == Green {
			ov.Colour = Amber
		}
	}
	return ov, nil
}

// correct applies a node's desired config now and waits for the outcome.
func (s *Server) correct(w http.ResponseWriter, r *http.Request) {
	n, err := s.inv().Get(r.PathValue("name"))
	if err != nil {
		fail(w, 404, err)
		return
	}
	g, err := s.groups().Get(n.Group)
	if err != nil {
		fail(w, 409, err)
		return
	}
	doc, err := desired.Render(g.Template, n)
	if err != nil {
		fail(w, 422, err)
		return
	}
	c := s.Client
	if c == nil {
		c = live.DefaultClient
	}
	cl := c(n.API)
	want := desired.Hash(doc)
	if cs, err := cl.Config(); err == nil && cs.Hash == want {
		writeJSON(w, map[string]string{"node": n.Name, "result": "in sync already"})
		return
	}
	a, err := cl.PutConfig(doc)
	if err != nil {
		fail(w, 502, err)
		return
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 90 * time.Second
	}
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		cs, err := cl.Config()
		if err != nil || cs.Last == nil || cs.Last.Generation != a.Generation {
			continue
		}
		switch cs.Last.State {
		case "applied":
			writeJSON(w, map[string]any{"node": n.Name, "result": "applied", "generation": cs.Generation})
			return
		case "rolled_back":
			fail(w, 502, errors.New("the node rolled it back: "+cs.Last.Error))
			return
		}
	}
	fail(w, 504, errors.New("the node did not report the outcome in time"))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Error is the body of a failed call.
type Error struct {
	Error string `json:"error"`
}

func fail(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(Error{Error: err.Error()})
}
