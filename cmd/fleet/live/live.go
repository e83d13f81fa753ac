// Package live polls every node's management API for its state now:
// firmware version and slots, running config generation and hash, zones
// and their serials, secondary zones and their primaries, BGP sessions
// and prefixes, health by part, queries per second, answered and
// SERVFAIL responses (its /metrics) and when it was last
// reached. What it could not read is left empty and said so, never
// guessed: a gate reads no data as inconclusive.
package live

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/firmware/api"
)

// State is one node as last polled.
type State struct {
	Name        string    `json:"name"`
	Reached     bool      `json:"reached"`
	Error       string    `json:"error,omitempty"`
	Polled      time.Time `json:"polled"`
	LastContact time.Time `json:"last_contact,omitzero"`

	Version string           `json:"version,omitempty"`
	Slots   *api.SlotsStatus `json:"slots,omitempty"`
	Config  *ConfigState     `json:"config,omitempty"`
	Zones   []api.ZoneInfo   `json:"zones,omitempty"`
	// Primaries of each secondary zone, by origin.
	Primaries map[string][]string `json:"primaries,omitempty"`
	Sessions  []api.BGPSession    `json:"sessions,omitempty"`
	Prefixes  []api.Prefix        `json:"prefixes,omitempty"`
	Health    *api.Health         `json:"health,omitempty"`
	Queries   uint64              `json:"queries"`
	QPS       float64             `json:"qps"`
	// History is qps at each poll over the last hour, oldest first.
	History []float64 `json:"history,omitempty"`
	// Traffic is the response counters now; Rate the traffic since the
	// previous poll (nil when either poll lacks them or the node
	// restarted between).
	Traffic *Traffic `json:"traffic,omitempty"`
	Rate    *Rate    `json:"rate,omitempty"`
}

// ConfigState is the running config as the node reports it.
type ConfigState struct {
	Generation uint64             `json:"generation"`
	Hash       string             `json:"hash"`
	Last       *api.ConfigAttempt `json:"last_attempt,omitempty"`
}

// Announcing reports whether the node announces prefix now: false with
// ok when it reports the prefix withdrawn, ok false when unknown.
func (s State) Announcing(prefix string) (announcing, ok bool) {
	if !s.Reached {
		return false, false
	}
	for _, p := range s.Prefixes {
		if p.Prefix == prefix {
			return p.State == "announced", true
		}
	}
	return false, len(s.Sessions) > 0
}

// Client returns the API client for a node's management address.
type Client func(addr string) *api.Client

// DefaultClient calls addr directly (dev mode, or from a tailnet member).
func DefaultClient(addr string) *api.Client {
	c := api.NewClient(addr)
	c.HTTP = &http.Client{Timeout: 3 * time.Second}
	return c
}

// Poller keeps every node's state.
type Poller struct {
	Nodes  func() ([]inventory.Node, error)
	Client Client
	// Interval between poll rounds (default 2 s).
	Interval time.Duration
	// Parallel bounds concurrent polls (default 32).
	Parallel int

	mu    sync.Mutex
	state map[string]State
}

// historyLen is an hour of samples at the default interval, capped.
const historyLen = 120

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	iv := p.Interval
	if iv == 0 {
		iv = 2 * time.Second
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		p.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round polls every node once.
func (p *Poller) Round(ctx context.Context) {
	nodes, err := p.Nodes()
	if err != nil {
		return
	}
	par := p.Parallel
	if par == 0 {
		par = 32
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st := p.pollOne(n)
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.state == nil {
				p.state = map[string]State{}
			}
			prev := p.state[n.Name]
			if !st.Reached {
				// Keep what was known, marked unreached.
				prev.Reached, prev.Error, prev.Polled, prev.Name = false, st.Error, st.Polled, n.Name
				p.state[n.Name] = prev
				return
			}
			if prev.Reached && st.Queries >= prev.Queries {
				if dt := st.Polled.Sub(prev.Polled).Seconds(); dt > 0 {
					st.QPS = float64(st.Queries-prev.Queries) / dt
				}
			}
			if r, ok := RateBetween(prev.Traffic, st.Traffic); ok && prev.Reached {
				st.Rate = &r
			}
			st.History = append(prev.History, st.QPS)
			if len(st.History) > historyLen {
				st.History = st.History[len(st.History)-historyLen:]
			}
			p.state[n.Name] = st
		}()
	}
	wg.Wait()
}

// Poll polls one node now and returns its state (gates read fresh data).
func (p *Poller) Poll(n inventory.Node) State {
	return p.pollOne(n)
}

func (p *Poller) pollOne(n inventory.Node) State {
	c := p.Client
	if c == nil {
		c = DefaultClient
	}
	cl := c(n.API)
	st := State{Name: n.Name, Polled: time.Now()}
	status, err := cl.Status()
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Reached, st.LastContact = true, st.Polled
	st.Queries, st.Health = status.Queries, status.Health
	if cs, err := cl.Config(); err == nil {
		st.Config = &ConfigState{Generation: cs.Generation, Hash: cs.Hash, Last: cs.Last}
	}
	if zs, err := cl.Zones(); err == nil {
		st.Zones = zs
	}
	var ov api.Overview
	if err := getJSON(cl, "/api/v1/overview", &ov); err == nil {
		st.Version = ov.Version
		if ov.Routing != nil {
			st.Sessions, st.Prefixes = ov.Routing.Sessions, ov.Routing.Prefixes
		}
		if ov.Secondary != nil {
			st.Primaries = map[string][]string{}
			for _, z := range ov.Secondary.Zones {
				st.Primaries[z.Origin] = z.Primaries
			}
		}
	}
	if s, err := cl.Slots(); err == nil {
		st.Slots = &s
	}
	if t, err := readTraffic(cl); err == nil {
		st.Traffic = t
	}
	return st
}

// States returns every node's last state, by name.
func (p *Poller) States() map[string]State {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]State, len(p.state))
	for k, v := range p.state {
		out[k] = v
	}
	return out
}

// Names returns the polled nodes' names, sorted.
func (p *Poller) Names() []string {
	s := p.States()
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
