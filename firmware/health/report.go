package health

import (
	"fmt"
	"strings"
)

// What a healthy node is, defined once. A Report has four named parts;
// each consumer asks for the parts it needs by name:
//
//   - the hardware watchdog: Serving only (a box whose BGP peer is down
//     is not fixed by a reset);
//   - the prefix health checks: Serving and ZonesFresh, per prefix (the
//     Monitor's own checks, fed by the same expired-zones source);
//   - the status page and the status API: every part, shown;
//   - the OTA commit (next): every part.

// Part names one part of a node's health.
type Part string

// The parts of a Report.
const (
	// Serving: the node is up (DNS and management listeners bound) and
	// its DNS server answers its own liveness queries.
	Serving Part = "serving"
	// ZonesFresh: no served zone is past its SOA expire.
	ZonesFresh Part = "zones_fresh"
	// BGP: every configured session Established and every prefix whose
	// checks pass announced (true without BGP).
	BGP Part = "bgp"
	// Management: the management API listens, and on a node that joins
	// a tailnet, the tailnet is up.
	Management Part = "management"
)

// Parts lists every part, in the order they are shown.
var Parts = []Part{Serving, ZonesFresh, BGP, Management}

// Check is one part's verdict and why.
type Check struct {
	OK  bool
	Why string
}

// Report is the node's health, part by part.
type Report struct {
	Serving, ZonesFresh, BGP, Management Check
}

// Part returns one part's check.
func (r Report) Part(p Part) Check {
	switch p {
	case Serving:
		return r.Serving
	case ZonesFresh:
		return r.ZonesFresh
	case BGP:
		return r.BGP
	case Management:
		return r.Management
	}
	return Check{Why: fmt.Sprintf("no such part of health: %q", string(p))}
}

// Verdict is whether every one of parts is OK (every part when none is
// named). With one part, the reason is that part's; with more, the
// failing parts' reasons, each named.
func (r Report) Verdict(parts ...Part) (bool, string) {
	if len(parts) == 0 {
		parts = Parts
	}
	if len(parts) == 1 {
		c := r.Part(parts[0])
		return c.OK, c.Why
	}
	var bad []string
	for _, p := range parts {
		if c := r.Part(p); !c.OK {
			bad = append(bad, string(p)+": "+c.Why)
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	return true, "ok"
}

// Sources are where a Report's parts come from; a nil source counts as
// OK (the node does not run that part).
type Sources struct {
	// Ready reports whether the node's listeners are up (DNS,
	// management); until then every part is "starting".
	Ready func() bool
	// Alive is the DNS server answering its own liveness queries
	// (Monitor.Alive).
	Alive func() (bool, string)
	// Expired lists the served zones past their SOA expire.
	Expired func() []string
	// Announcing is the BGP part (routing).
	Announcing func() (bool, string)
	// Reachable is the management overlay's part (the tailnet up when
	// configured).
	Reachable func() (bool, string)
}

// Report reads every source now.
func (s Sources) Report() Report {
	ready := s.Ready == nil || s.Ready()
	call := func(f func() (bool, string), ok string) Check {
		if f == nil {
			return Check{OK: true, Why: ok}
		}
		good, why := f()
		return Check{OK: good, Why: why}
	}
	if !ready {
		starting := Check{Why: "starting"}
		return Report{Serving: starting, ZonesFresh: starting, BGP: starting, Management: starting}
	}
	var r Report
	r.Serving = call(s.Alive, "ok")
	r.Management = call(s.Reachable, "ok")
	r.ZonesFresh = Check{OK: true, Why: "no zone past its SOA expire"}
	if s.Expired != nil {
		if ex := s.Expired(); len(ex) > 0 {
			r.ZonesFresh = Check{Why: "past SOA expire: " + strings.Join(ex, ", ")}
		}
	}
	r.BGP = call(s.Announcing, "no BGP configured")
	return r
}
