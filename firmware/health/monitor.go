package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/bgp"
)

// Announcer is what the monitor drives: the BGP speaker.
type Announcer interface {
	SetRoutes([]bgp.Route) error
}

// Monitor runs the checks and keeps the announcements in line with them.
type Monitor struct {
	cfg   Config
	out   Announcer
	log   *slog.Logger
	probe ProbeFunc

	mu        sync.Mutex
	prefixes  []*prefix
	stopping  stopPhase
	started   time.Time
	lastRound time.Time
	// silent counts consecutive rounds in which no probe got any DNS
	// reply; silentWhy is the last such round's first error.
	silent    int
	silentWhy string
	published string // key of the routes last given to out
}

type stopPhase int

const (
	running       stopPhase = iota
	stopDraining            // announced prefixes carry GRACEFUL_SHUTDOWN
	stopWithdrawn           // everything withdrawn
)

// New builds a monitor; Run starts the checks. Nothing is announced until
// a prefix has passed Rise rounds.
func New(cfg Config, out Announcer, logger *slog.Logger) (*Monitor, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{cfg: cfg, out: out, log: logger, probe: cfg.Probe, started: time.Now()}
	if m.probe == nil {
		m.probe = dnsProbe(cfg.NSID)
	}
	for _, pc := range cfg.Prefixes {
		p := &prefix{cfg: pc, pfx: pc.Route.Prefix.Masked(), state: Withdrawn, since: time.Now()}
		if slices.Contains(cfg.Drained, p.pfx) {
			p.maint, p.maintAt = maintDrained, time.Now()
		}
		p.reason = p.healthReason(cfg)
		m.prefixes = append(m.prefixes, p)
	}
	return m, nil
}

// Run checks every Interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		m.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type probeKey struct {
	target netip.AddrPort
	q      Query
}

// round runs every probe once, concurrently, and applies the results.
func (m *Monitor) round(ctx context.Context) {
	var keys []probeKey
	seen := map[probeKey]bool{}
	add := func(k probeKey) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, p := range m.prefixes {
		for _, t := range p.cfg.Targets {
			add(probeKey{t, p.cfg.Query})
		}
	}
	// The prefix checks already prove the server answers; the liveness
	// probes are for a node that announces nothing, so that they do not
	// add to the query counters and dnstap of a node that does.
	if len(m.prefixes) == 0 {
		for _, t := range m.cfg.Liveness {
			add(probeKey{t, livenessQuery()})
		}
	}
	rctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() { errs[i] = m.probe(rctx, k.target, k.q) })
	}
	wg.Wait()
	cancel()
	if ctx.Err() != nil {
		return // stopping: a cut-short round says nothing about the server
	}
	results := make(map[probeKey]error, len(keys))
	for i, k := range keys {
		results[k] = errs[i]
	}
	var expired []string
	if m.cfg.Expired != nil {
		expired = m.cfg.Expired()
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastRound = time.Now()
	m.noteSilence(results)
	for _, p := range m.prefixes {
		var fail error
		for _, t := range p.cfg.Targets {
			if err := results[probeKey{t, p.cfg.Query}]; err != nil {
				fail = fmt.Errorf("%s %s: %w", t, p.cfg.Query, err)
				break
			}
		}
		if fail == nil && len(expired) > 0 {
			fail = fmt.Errorf("zone %s past its SOA expire", strings.Join(expired[:min(len(expired), 3)], ", "))
			if len(expired) > 3 {
				fail = fmt.Errorf("%w (and %d more)", fail, len(expired)-3)
			}
		}
		m.record(p, fail)
	}
	m.evaluate()
}

// noteSilence tracks rounds in which the server answered nothing at all.
func (m *Monitor) noteSilence(results map[probeKey]error) {
	if len(results) == 0 {
		return
	}
	why := ""
	for k, err := range results {
		if err == nil || !errors.Is(err, errNoAnswer) {
			m.silent = 0
			return
		}
		if why == "" {
			why = fmt.Sprintf("%s: %v", k.target, err)
		}
	}
	m.silent++
	m.silentWhy = why
}

// record counts one round's result for p and flips its health after Rise
// passes or Fall failures in a row.
func (m *Monitor) record(p *prefix, fail error) {
	now := time.Now()
	p.checks++
	if fail == nil {
		p.passes++
		p.fails = 0
		if !p.healthy && p.passes >= m.cfg.Rise {
			p.healthy = true
			m.log.Info("prefix healthy", "prefix", p.pfx, "passes", p.passes)
		}
		return
	}
	p.fails++
	p.passes = 0
	p.lastErr, p.lastErrAt = fail.Error(), now
	if p.fails == 1 {
		m.log.Warn("prefix check failed", "prefix", p.pfx, "err", fail)
	}
	if p.healthy && p.fails >= m.cfg.Fall {
		p.healthy = false
		m.log.Warn("prefix unhealthy", "prefix", p.pfx, "fails", p.fails, "err", fail)
	}
}

// evaluate decides each prefix's state and hands the speaker the routes
// that follow; m.mu is held.
func (m *Monitor) evaluate() {
	now := time.Now()
	var routes []bgp.Route
	var key strings.Builder
	for _, p := range m.prefixes {
		state, reason := m.decide(p, now)
		if state != p.state {
			lvl := slog.LevelInfo
			if state == Withdrawn {
				lvl = slog.LevelWarn
			}
			m.log.Log(context.Background(), lvl, "prefix "+state, "prefix", p.pfx, "why", reason)
			p.state, p.since = state, now
		}
		p.reason = reason
		switch state {
		case Announced:
			routes = append(routes, p.cfg.Route)
		case Draining:
			r := p.cfg.Route
			r.GracefulShutdown = true
			routes = append(routes, r)
		default:
			continue
		}
		fmt.Fprintf(&key, "%v/%v;", p.pfx, state)
	}
	if key.String() == m.published {
		return
	}
	// SetRoutes never blocks on a peer; calling it under m.mu keeps the
	// speaker's view in the order decisions were made.
	if err := m.out.SetRoutes(routes); err != nil {
		m.log.Error("setting routes", "err", err)
		return
	}
	m.published = key.String()
}

// decide is p's state now, and why.
func (m *Monitor) decide(p *prefix, now time.Time) (state, reason string) {
	switch {
	case m.stopping == stopWithdrawn:
		return Withdrawn, "node stopping"
	case m.stopping == stopDraining:
		if p.drainOnStop && p.healthy {
			return Draining, "node stopping: announced with GRACEFUL_SHUTDOWN until withdrawn"
		}
		return Withdrawn, "node stopping"
	case p.maint == maintDrained:
		return Withdrawn, fmt.Sprintf("maintenance: drained by operator at %s", p.maintAt.Format(time.TimeOnly))
	case !p.healthy:
		return Withdrawn, p.healthReason(m.cfg)
	case p.maint == maintDraining:
		return Draining, fmt.Sprintf("maintenance: announced with GRACEFUL_SHUTDOWN until %s, then withdrawn", p.maintUntil.Format(time.TimeOnly))
	}
	return Announced, p.healthReason(m.cfg)
}

// Drain puts a prefix (or, with an invalid prefix, every prefix) into
// maintenance: an announced prefix gets GRACEFUL_SHUTDOWN for DrainWait
// and is then withdrawn; it stays withdrawn until Restore.
func (m *Monitor) Drain(pfx netip.Prefix) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps, err := m.match(pfx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, p := range ps {
		if p.maint != maintOff {
			continue
		}
		p.maintAt = now
		if p.state != Announced {
			p.maint = maintDrained
			continue
		}
		p.maint = maintDraining
		p.maintUntil = now.Add(m.cfg.DrainWait)
		p.timer = time.AfterFunc(m.cfg.DrainWait, func() { m.drained(p) })
		m.log.Info("prefix draining by operator", "prefix", p.pfx, "withdraw_in", m.cfg.DrainWait)
	}
	m.evaluate()
	return nil
}

// drained ends p's drain wait.
func (m *Monitor) drained(p *prefix) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.maint != maintDraining {
		return // restored meanwhile
	}
	p.maint = maintDrained
	p.timer = nil
	m.evaluate()
}

// Restore ends maintenance of a prefix (or, with an invalid prefix, of
// every prefix): it is announced again at once if its checks pass.
func (m *Monitor) Restore(pfx netip.Prefix) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps, err := m.match(pfx)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.maint == maintOff {
			continue
		}
		if p.timer != nil {
			p.timer.Stop()
			p.timer = nil
		}
		p.maint = maintOff
		m.log.Info("prefix restored by operator", "prefix", p.pfx)
	}
	m.evaluate()
	return nil
}

// ErrUnknownPrefix is returned by Drain and Restore for a prefix the node
// does not announce.
var ErrUnknownPrefix = errors.New("not an announced prefix")

func (m *Monitor) match(pfx netip.Prefix) ([]*prefix, error) {
	if !pfx.IsValid() {
		return m.prefixes, nil
	}
	for _, p := range m.prefixes {
		if p.pfx == pfx.Masked() {
			return []*prefix{p}, nil
		}
	}
	return nil, fmt.Errorf("%v: %w", pfx, ErrUnknownPrefix)
}

// Stop drains the node before a planned stop: every announced prefix is
// re-announced with GRACEFUL_SHUTDOWN, DrainWait later everything is
// withdrawn, and Stop returns Linger after that, while the caller keeps
// answering queries. With nothing announced it returns at once. ctx cuts
// the waits short. The monitor never announces again afterwards.
func (m *Monitor) Stop(ctx context.Context) {
	m.mu.Lock()
	if m.stopping != running {
		m.mu.Unlock()
		return
	}
	drain := false
	for _, p := range m.prefixes {
		p.drainOnStop = p.state != Withdrawn
		drain = drain || p.drainOnStop
	}
	m.stopping = stopDraining
	m.evaluate()
	m.mu.Unlock()
	if drain {
		m.log.Info("draining: prefixes announced with GRACEFUL_SHUTDOWN", "withdraw_in", m.cfg.DrainWait)
		sleepCtx(ctx, m.cfg.DrainWait)
	}
	m.mu.Lock()
	m.stopping = stopWithdrawn
	m.evaluate()
	m.mu.Unlock()
	if drain {
		m.log.Info("drained: prefixes withdrawn; answering a while longer", "linger", m.cfg.Linger)
		sleepCtx(ctx, m.cfg.Linger)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Alive reports whether the DNS server answers at all, which is what the
// node's health (and the hardware watchdog fed from it) rests on: false
// once no probe has had any reply for Fall rounds in a row, or when the
// checks themselves have stalled. A prefix withdrawn for a wrong answer,
// an expired zone or maintenance leaves the node alive: rebooting would
// not fix those.
func (m *Monitor) Alive() (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	stall := max(10*m.cfg.Interval, 3*time.Second)
	last := m.lastRound
	if last.IsZero() {
		last = m.started
	}
	if time.Since(last) > stall {
		return false, fmt.Sprintf("health checks stalled: last round %v ago", time.Since(last).Round(time.Millisecond))
	}
	if m.silent >= m.cfg.Fall {
		return false, "DNS server not answering: " + m.silentWhy
	}
	if len(m.prefixes) == 0 {
		return true, "ok"
	}
	var up int
	var down []string
	for _, p := range m.prefixes {
		if p.state == Withdrawn {
			down = append(down, fmt.Sprintf("%v (%s)", p.pfx, p.reason))
		} else {
			up++
		}
	}
	s := fmt.Sprintf("ok: %d of %d prefixes announced", up, len(m.prefixes))
	if len(down) > 0 {
		slices.Sort(down)
		s += "; withdrawn: " + strings.Join(down, ", ")
	}
	return true, s
}
