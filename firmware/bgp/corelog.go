package bgp

import (
	"fmt"
	"strings"
	"time"
)

// corebgp reports FSM transitions and the reasons sessions fail (hold timer
// expiry, NOTIFICATIONs sent or received, read errors) only through its
// process-wide log function. The speaker parses those lines to fill
// PeerStatus.State and LastError. The formats are those of corebgp v0.8.5,
// pinned in go.mod; corelog_test.go fails if an upgrade changes them.

// coreEvent is one parsed corebgp log line.
type coreEvent struct {
	addr string // the peer's address as corebgp prints it
	kind coreEventKind
	dir  int    // 0 outgoing FSM, 1 incoming
	to   string // new FSM state, for transitions
	msg  string // error text or damping delay
}

type coreEventKind int

const (
	coreOther coreEventKind = iota
	coreTransition
	coreError
	coreDamping
)

// parseCoreLog understands
//
//	[addr] FSM-out transition connect => openSent
//	[addr] FSM-in openSent error: <text>
//	[addr] damping peer for 1m0s
func parseCoreLog(line string) coreEvent {
	if !strings.HasPrefix(line, "[") {
		return coreEvent{}
	}
	addr, rest, ok := strings.Cut(line[1:], "] ")
	if !ok {
		return coreEvent{}
	}
	ev := coreEvent{addr: addr}
	if d, ok := strings.CutPrefix(rest, "damping peer for "); ok {
		ev.kind, ev.msg = coreDamping, d
		return ev
	}
	var dir string
	switch {
	case strings.HasPrefix(rest, "FSM-out "):
		dir, rest = "out", rest[len("FSM-out "):]
	case strings.HasPrefix(rest, "FSM-in "):
		dir, rest = "in", rest[len("FSM-in "):]
	default:
		return ev
	}
	if dir == "in" {
		ev.dir = 1
	}
	if t, ok := strings.CutPrefix(rest, "transition "); ok {
		if _, to, ok := strings.Cut(t, " => "); ok {
			ev.kind, ev.to = coreTransition, to
		}
		return ev
	}
	if _, msg, ok := strings.Cut(rest, " error: "); ok {
		ev.kind, ev.msg = coreError, msg
	}
	return ev
}

// coreLog is installed as corebgp's logger while the speaker runs.
func (s *Speaker) coreLog(v ...any) {
	line := fmt.Sprint(v...)
	ev := parseCoreLog(line)
	p := s.byAddr[ev.addr]
	if p == nil {
		s.log.Debug("corebgp", "msg", line)
		return
	}
	switch ev.kind {
	case coreTransition:
		p.log.Debug("bgp fsm", "fsm", []string{"out", "in"}[ev.dir], "state", ev.to)
		p.fsmTransition(ev.dir, ev.to)
	case coreError:
		p.coreError(ev.msg)
	case coreDamping:
		// corebgp refuses the neighbour for a while after a protocol
		// error; dialing before then only gets the connection closed.
		if d, err := time.ParseDuration(ev.msg); err == nil {
			p.damped(d)
		}
		p.setError(p.lastError() + "; damped, next attempt in " + ev.msg)
	default:
		p.log.Debug("corebgp", "msg", line)
	}
}
