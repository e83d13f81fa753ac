package dnsserver

import (
	"net/netip"
	"time"
)

// Tap receives a copy of each query and its response (dnstap). It is
// called on the answer path, so it must copy what it keeps, never block,
// and drop (and count) when it cannot keep up: a slow collector must never
// slow the answers.
type Tap interface {
	Tap(query, response []byte, client netip.AddrPort, tcp bool, received time.Time)
}

// tapSink holds the Tap so it can be swapped atomically: an atomic
// pointer load is all a query pays while no tap is set.
type tapSink struct{ t Tap }

// SetTap starts (or, with nil, stops) copying queries and responses to t.
func (s *Server) SetTap(t Tap) {
	if t == nil {
		s.tap.Store(nil)
		return
	}
	s.tap.Store(&tapSink{t})
}

// tapped hands one exchange to the tap, if one is set.
func (s *Server) tapped(q *query, resp []byte, client netip.AddrPort, tcp bool, received time.Time) {
	if t := s.tap.Load(); t != nil {
		t.t.Tap(q.msg, resp, client, tcp, received)
	}
}

// answered counts the query a UDP worker just answered and taps it.
func (w *udpWorker) answered(i int, resp []byte, received time.Time) {
	w.sh.count(&w.q, resp)
	if t := w.s.tap.Load(); t != nil && resp != nil {
		t.t.Tap(w.q.msg, resp, sockaddrToAddrPort(&w.names[i]), false, received)
	}
}
