// Package reconfig runs the node runtime under a config document that can
// be replaced whole while the box runs (PUT /api/v1/config): it validates
// the new document, stops the running runtime (which drains first),
// starts a new one with the new document and keeps it only if it starts
// and becomes healthy in time; otherwise it starts the old one again. A
// config is applied whole or not at all, and the box is never left
// without a runtime. Which config runs, its generation and hash, and the
// outcome of the last attempt are what GET /api/v1/config shows.
package reconfig

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

// Runtime is one run of the node under one config: *node.Node.
type Runtime interface {
	Run(ctx context.Context) error
	Healthy() (bool, string)
}

// Factory builds a runtime for cfg; it must call ready once the runtime
// answers queries and its API is up.
type Factory func(cfg *config.Config, ready func()) Runtime

// Attempt states.
const (
	StateApplying   = "applying"
	StateApplied    = "applied"
	StateRolledBack = "rolled_back" // the new config did not come up; the old one runs again
)

// Attempt is the outcome of the last apply.
type Attempt struct {
	Generation uint64    `json:"generation"`
	Hash       string    `json:"hash"`
	State      string    `json:"state"`
	Error      string    `json:"error,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished,omitzero"`
}

// Running is the config the node runs now.
type Running struct {
	// Generation counts the documents applied through the API on this
	// data directory; 0 is the one the node was started with.
	Generation uint64    `json:"generation"`
	Hash       string    `json:"hash"` // sha256 of Document, hex
	Since      time.Time `json:"since"`
	Document   string    `json:"document"`
	// Last is the last apply through the API, if any.
	Last *Attempt `json:"last_attempt,omitempty"`
}

// Options configure a Supervisor.
type Options struct {
	// Document is the config the node starts with, as given (the file's
	// bytes); Config is its parsed form.
	Document []byte
	Config   *config.Config
	New      Factory
	Log      *slog.Logger
	// HealthyWithin bounds how long a new config may take to come up
	// and be healthy (default 30 s).
	HealthyWithin time.Duration
}

// Supervisor owns the running runtime and replaces it on request.
type Supervisor struct {
	opts Options
	reqs chan request

	mu      sync.Mutex
	running Running
	cfg     *config.Config
	pending bool
}

type request struct {
	doc []byte
	cfg *config.Config
	gen uint64
}

// ErrBusy is returned while an apply is in progress.
var ErrBusy = errors.New("an apply is in progress; retry when GET /api/v1/config shows it finished")

// New returns a supervisor; Run starts the runtime.
func New(opts Options) *Supervisor {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.HealthyWithin == 0 {
		opts.HealthyWithin = 30 * time.Second
	}
	s := &Supervisor{opts: opts, reqs: make(chan request, 1), cfg: opts.Config}
	s.running = Running{Hash: Hash(opts.Document), Document: string(opts.Document), Since: time.Now().UTC()}
	if st, err := readState(opts.Config.DataDir); err == nil {
		s.running.Generation = st.Generation
	}
	return s
}

// Hash is the hash a document is known by (sha256, hex).
func Hash(doc []byte) string {
	h := sha256.Sum256(doc)
	return hex.EncodeToString(h[:])
}

// Running returns the running config and the last attempt.
func (s *Supervisor) Running() Running {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.running
	if r.Last != nil {
		a := *r.Last
		r.Last = &a
	}
	return r
}

// Apply validates doc and queues it to replace the running config; it
// returns at once with the attempt (state applying): the runtime that
// serves this call is the one being replaced. A document that does not
// validate is refused here and nothing changes.
func (s *Supervisor) Apply(doc []byte) (Attempt, error) {
	cfg, err := config.Parse(doc)
	if err != nil {
		return Attempt{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The store and the management address are where the node and the
	// controller find each other again after the restart.
	if !sameDir(cfg.DataDir, s.cfg.DataDir) {
		return Attempt{}, fmt.Errorf("data_dir: %q differs from the running %q; a running node cannot move its store (restart it with the new file)", cfg.DataDir, s.cfg.DataDir)
	}
	if cfg.Management.Listen != s.cfg.Management.Listen {
		return Attempt{}, fmt.Errorf("management.listen: %q differs from the running %q; applying it would cut off the caller (restart the node with the new file)", cfg.Management.Listen, s.cfg.Management.Listen)
	}
	if s.pending {
		return Attempt{}, ErrBusy
	}
	s.pending = true
	a := Attempt{Generation: s.running.Generation + 1, Hash: Hash(doc), State: StateApplying, Started: time.Now().UTC()}
	s.running.Last = &a
	s.reqs <- request{doc: doc, cfg: cfg, gen: a.Generation}
	return a, nil
}

// Run runs the runtime until ctx ends, replacing it when Apply asks.
func (s *Supervisor) Run(ctx context.Context) error {
	cur := s.start(s.opts.Config)
	for {
		select {
		case err := <-cur.done:
			// The runtime ended by itself (it could not start): that is
			// the node's exit, as without a supervisor.
			cur.stop()
			return err
		case <-ctx.Done():
			cur.stop()
			return <-cur.done
		case req := <-s.reqs:
			old := s.currentConfig()
			cur.stop()
			if err := <-cur.done; err != nil {
				s.opts.Log.Warn("reconfig: old runtime stopped with an error", "err", err)
			}
			next, why := s.tryNew(ctx, req)
			if next != nil {
				cur = next
				continue
			}
			s.opts.Log.Error("reconfig: new config did not come up; running the previous one again", "generation", req.gen, "err", why)
			cur = s.start(old)
		}
	}
}

func (s *Supervisor) currentConfig() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// run is one runtime running in its own goroutine.
type run struct {
	rt    Runtime
	stop  context.CancelFunc
	done  chan error
	ready chan struct{}
}

// start runs a runtime for cfg in its own goroutine.
func (s *Supervisor) start(cfg *config.Config) *run {
	rctx, cancel := context.WithCancel(context.Background())
	r := &run{stop: cancel, done: make(chan error, 1), ready: make(chan struct{})}
	var once sync.Once
	r.rt = s.opts.New(cfg, func() { once.Do(func() { close(r.ready) }) })
	go func() { r.done <- r.rt.Run(rctx) }()
	return r
}

// tryNew starts the new config and waits for it to be ready and healthy.
// On success it returns the new run (the state file and the attempt are
// updated); on failure it stops it and says why, and Run starts the old
// config again.
func (s *Supervisor) tryNew(ctx context.Context, req request) (*run, string) {
	r := s.start(req.cfg)
	why, healthy, exited := "", false, false
	deadline := time.NewTimer(s.opts.HealthyWithin)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	ready := r.ready
wait:
	for {
		select {
		case err := <-r.done:
			why, exited = fmt.Sprintf("did not start: %v", err), true
			break wait
		case <-deadline.C:
			why = fmt.Sprintf("not healthy within %s", s.opts.HealthyWithin)
			if ready == nil {
				if h, w := r.rt.Healthy(); !h {
					why += ": " + w
				}
			}
			break wait
		case <-ctx.Done():
			why = "node stopping"
			break wait
		case <-ready:
			ready = nil
		case <-tick.C:
			if ready == nil {
				if ok, _ := r.rt.Healthy(); ok {
					healthy = true
					break wait
				}
			}
		}
	}
	if !healthy && !exited {
		r.stop()
		<-r.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = false
	now := time.Now().UTC()
	last := s.running.Last
	last.Finished = now
	if !healthy {
		last.State, last.Error = StateRolledBack, why
		return nil, why
	}
	// The runtime saved its document as the last good config once it was
	// up (node.Run); the generation and hash are kept beside it.
	last.State = StateApplied
	s.running = Running{Generation: req.gen, Hash: Hash(req.doc), Since: now, Document: string(req.doc), Last: last}
	s.cfg = req.cfg
	if err := writeState(req.cfg.DataDir, state{Generation: req.gen, Hash: s.running.Hash}); err != nil {
		s.opts.Log.Warn("reconfig: keeping the generation", "err", err)
	}
	s.opts.Log.Info("reconfig: new config applied", "generation", req.gen, "hash", s.running.Hash[:12])
	return r, ""
}

// StateFile, in the data directory, keeps the generation across restarts.
const StateFile = "config-generation.json"

type state struct {
	Generation uint64 `json:"generation"`
	Hash       string `json:"hash"`
}

func readState(dir string) (state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// writeState writes the state file crash-safely (a rename).
func writeState(dir string, st state) error {
	b, _ := json.Marshal(st)
	tmp := filepath.Join(dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, StateFile))
}

// sameDir compares two directories as the node would open them.
func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}
