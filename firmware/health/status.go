package health

import (
	"fmt"
	"net/netip"
	"time"
)

// Prefix states, as PrefixStatus.State shows them.
const (
	// Announced: healthy and announced plainly.
	Announced = "announced"
	// Draining: still announced, with GRACEFUL_SHUTDOWN, until withdrawn.
	Draining = "draining"
	// Withdrawn: not announced; Reason says why.
	Withdrawn = "withdrawn"
)

type maintenance int

const (
	maintOff      maintenance = iota
	maintDraining             // GRACEFUL_SHUTDOWN until maintUntil
	maintDrained              // withdrawn until restored
)

// prefix is one announced prefix's check state; Monitor.mu guards it.
type prefix struct {
	cfg Prefix
	pfx netip.Prefix

	healthy       bool
	checks        int // rounds counted
	passes, fails int // current run of passing or failing rounds
	lastErr       string
	lastErrAt     time.Time

	maint      maintenance
	maintAt    time.Time
	maintUntil time.Time
	timer      *time.Timer // ends maintDraining

	drainOnStop bool // announced when Stop began

	state  string
	reason string
	since  time.Time
}

// healthReason explains p's check state in a sentence.
func (p *prefix) healthReason(cfg Config) string {
	switch {
	case p.healthy && p.fails == 0:
		return "checks pass"
	case p.healthy:
		return fmt.Sprintf("checks pass; %d of %d failures needed to withdraw: %s", p.fails, cfg.Fall, p.lastErr)
	case p.fails > 0:
		return fmt.Sprintf("check failing: %s", p.lastErr)
	case p.lastErr != "":
		return fmt.Sprintf("recovering: %d of %d passing checks needed (last failure at %s: %s)",
			p.passes, cfg.Rise, p.lastErrAt.Format(time.TimeOnly), p.lastErr)
	default:
		return fmt.Sprintf("starting: %d of %d passing checks needed", p.passes, cfg.Rise)
	}
}

// PrefixStatus is one prefix as the API and ctl show it.
type PrefixStatus struct {
	Prefix netip.Prefix
	// State is Announced, Draining or Withdrawn, since Since; Reason says
	// why.
	State  string
	Reason string
	Since  time.Time
	// Healthy is the checks' verdict, whatever maintenance says.
	Healthy bool
	// Passes and Fails are the current run of passing or failing rounds.
	Passes, Fails int
	Targets       []netip.AddrPort
	Query         string
	LastError     string
	LastErrorAt   time.Time
	Maintenance   bool
}

// Status reports every prefix in configuration order.
func (m *Monitor) Status() []PrefixStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PrefixStatus, len(m.prefixes))
	for i, p := range m.prefixes {
		out[i] = PrefixStatus{
			Prefix: p.pfx, State: p.state, Reason: p.reason, Since: p.since,
			Healthy: p.healthy, Passes: p.passes, Fails: p.fails,
			Targets: append([]netip.AddrPort(nil), p.cfg.Targets...), Query: p.cfg.Query.String(),
			LastError: p.lastErr, LastErrorAt: p.lastErrAt,
			Maintenance: p.maint != maintOff,
		}
	}
	return out
}

// Maintained lists the prefixes in maintenance, for the node to keep
// across restarts.
func (m *Monitor) Maintained() []netip.Prefix {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []netip.Prefix
	for _, p := range m.prefixes {
		if p.maint != maintOff {
			out = append(out, p.pfx)
		}
	}
	return out
}
