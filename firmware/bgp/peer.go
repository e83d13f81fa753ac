package bgp

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/jwhited/corebgp"
)

// RFC 4486 CEASE subcodes we send.
const (
	ceaseMaxPrefixes        = 1
	ceaseConnectionRejected = 5
)

// idleHoldTime is how long we wait after a connection ends before dialing
// again; failed dials back off from there up to maxRedialDelay. corebgp's
// own default is 5 s; a node that just lost its upstream wants it back
// sooner, and a failed dial costs one SYN.
const idleHoldTime = 2 * time.Second

// peer is one configured neighbour: the corebgp Plugin for it, its
// connection state, and the status that outlives its sessions.
type peer struct {
	cfg PeerConfig
	sp  *Speaker
	log *slog.Logger
	// kick wakes the session goroutine when the desired routes change.
	// One buffered slot: any number of SetRoutes calls collapse into one
	// wake-up, and SetRoutes never waits for a slow peer.
	kick chan struct{}
	// wake tells the dialer that a connection ended.
	wake chan struct{}

	mu        sync.Mutex
	fsm       [2]string // corebgp's outgoing and incoming FSM states
	sess      *session  // nil unless established
	offered   familySet // families in the neighbour's last OPEN
	state     string
	since     time.Time
	lastErr   string
	lastErrAt time.Time
	holdUntil time.Time               // max-prefix hold-down
	dampUntil time.Time               // corebgp refuses connections until then
	conns     map[*guardConn]struct{} // handed to corebgp, not yet closed
	lastEnd   time.Time               // when the last connection ended or dial failed
	dialFails int                     // consecutive failed dials, for backoff
	dialing   bool
	// explained is set when we closed the session ourselves and already
	// recorded why, so that corebgp's generic report of the close does not
	// replace the reason.
	explained bool
}

func newPeer(sp *Speaker, cfg PeerConfig) *peer {
	p := &peer{
		cfg:   cfg,
		sp:    sp,
		log:   sp.log.With("peer", cfg.Name, "addr", cfg.Address),
		kick:  make(chan struct{}, 1),
		wake:  make(chan struct{}, 1),
		conns: map[*guardConn]struct{}{},
		state: StateIdle,
		since: time.Now(),
	}
	return p
}

func (p *peer) corebgpConfig() corebgp.PeerConfig {
	return corebgp.PeerConfig{RemoteAddress: p.cfg.Address, LocalAS: p.sp.cfg.LocalASN, RemoteAS: p.cfg.RemoteASN}
}

// options makes every peer passive to corebgp: connect.go does the dialing.
func (p *peer) options() []corebgp.PeerOption {
	opts := []corebgp.PeerOption{
		corebgp.WithPassive(),
		corebgp.WithHoldTime(uint16(p.cfg.HoldTime / time.Second)),
	}
	if p.cfg.LocalAddress.IsValid() {
		opts = append(opts, corebgp.WithLocalAddress(p.cfg.LocalAddress))
	}
	return opts
}

func (p *peer) connOpened(g *guardConn) {
	p.mu.Lock()
	p.conns[g] = struct{}{}
	p.mu.Unlock()
}

func (p *peer) connClosed(g *guardConn) {
	p.mu.Lock()
	delete(p.conns, g)
	p.lastEnd = time.Now()
	p.mu.Unlock()
	p.signal(p.wake)
}

func (p *peer) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// nextDial reports whether a connection is up or in setup (busy), and
// otherwise how long until the dialer may try.
func (p *peer) nextDial() (busy bool, wait time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) > 0 {
		return true, 0
	}
	delay := idleHoldTime
	for range min(p.dialFails, 5) {
		delay *= 2
	}
	next := p.lastEnd.Add(min(delay, maxRedialDelay))
	for _, t := range []time.Time{p.holdUntil, p.dampUntil} {
		if t.After(next) {
			next = t
		}
	}
	if p.lastEnd.IsZero() && p.holdUntil.IsZero() && p.dampUntil.IsZero() {
		return false, 0 // first dial: at once
	}
	return false, time.Until(next)
}

// drop closes the peer's connections; corebgp then ends the session as if
// the neighbour had gone, and the dialer starts over.
func (p *peer) drop(reason string) {
	p.mu.Lock()
	conns := make([]*guardConn, 0, len(p.conns))
	for g := range p.conns {
		conns = append(conns, g)
	}
	p.explained = len(conns) > 0
	p.mu.Unlock()
	p.setError(reason)
	for _, g := range conns {
		g.Close()
	}
}

func (p *peer) setDialing(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dialing = on
	p.updateStateLocked()
}

func (p *peer) dialFailed(err error) {
	p.mu.Lock()
	p.dialFails++
	p.lastEnd = time.Now()
	p.mu.Unlock()
	p.setError("connect: " + err.Error())
}

func (p *peer) damped(d time.Duration) {
	p.mu.Lock()
	p.dampUntil = time.Now().Add(d)
	p.mu.Unlock()
	p.signal(p.wake)
}

// GetCapabilities offers multiprotocol capabilities for the families this
// peer carries; corebgp adds 4-byte ASN itself. Nothing else: see the
// package comment on route-refresh and graceful restart.
func (p *peer) GetCapabilities(corebgp.PeerConfig) []corebgp.Capability {
	return p.cfg.families().capabilities()
}

// OnOpenMessage refuses sessions during a max-prefix hold-down and notes
// which families the neighbour offers.
func (p *peer) OnOpenMessage(_ corebgp.PeerConfig, routerID netip.Addr, caps []corebgp.Capability) *corebgp.Notification {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Now().Before(p.holdUntil) {
		p.explained = true
		return &corebgp.Notification{Code: corebgp.NOTIF_CODE_CEASE, Subcode: ceaseConnectionRejected}
	}
	p.offered = remoteFamilies(caps)
	if p.offered&p.cfg.families() == 0 {
		p.log.Warn("bgp neighbour offers none of our address families",
			"ours", p.cfg.families().String(), "theirs", p.offered.String(), "router_id", routerID)
	}
	return nil
}

// OnEstablished starts the session's writer and returns its update
// handler.
func (p *peer) OnEstablished(_ corebgp.PeerConfig, w corebgp.UpdateMessageWriter) corebgp.UpdateMessageHandler {
	p.mu.Lock()
	s := newSession(p, w, p.offered&p.cfg.families())
	p.sess = s
	p.dialFails = 0
	p.updateStateLocked()
	p.mu.Unlock()
	go s.run()
	return s.handleUpdate
}

// OnClose stops the session's writer. corebgp has closed the connection
// by now, so a write in progress fails at once and the wait is short.
func (p *peer) OnClose(corebgp.PeerConfig) {
	p.mu.Lock()
	s := p.sess
	p.sess = nil
	p.updateStateLocked()
	p.mu.Unlock()
	if s != nil {
		s.stop()
	}
}

// maxPrefixExceeded starts the hold-down and builds the CEASE for it.
func (p *peer) maxPrefixExceeded(count int, fam familySet) *corebgp.Notification {
	p.mu.Lock()
	p.holdUntil = time.Now().Add(p.cfg.MaxPrefixRestart)
	p.explained = true
	p.mu.Unlock()
	p.setError(fmt.Sprintf("max-prefix: neighbour announced %d prefixes, limit %d; held down for %v",
		count, p.cfg.MaxPrefixes, p.cfg.MaxPrefixRestart))
	// RFC 4486 section 4: AFI, SAFI and the upper bound.
	data := make([]byte, 7)
	afi := corebgp.AFI_IPV4
	if fam == famIPv6 {
		afi = corebgp.AFI_IPV6
	}
	binary.BigEndian.PutUint16(data, afi)
	data[2] = corebgp.SAFI_UNICAST
	binary.BigEndian.PutUint32(data[3:], uint32(min(uint64(max(p.cfg.MaxPrefixes, 0)), 1<<32-1)))
	return &corebgp.Notification{Code: corebgp.NOTIF_CODE_CEASE, Subcode: ceaseMaxPrefixes, Data: data}
}

func (p *peer) fsmTransition(dir int, to string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fsm[dir] = to
	p.updateStateLocked()
}

func (p *peer) setError(msg string) {
	p.mu.Lock()
	repeat := msg == p.lastErr
	p.lastErr, p.lastErrAt = msg, time.Now()
	p.mu.Unlock()
	if repeat {
		// A neighbour that stays unreachable fails the same way on every
		// redial; say so once.
		p.log.Debug("bgp session error", "err", msg)
		return
	}
	p.log.Warn("bgp session error", "err", msg)
}

// closedByUs records an error of ours that ends the session.
func (p *peer) closedByUs(msg string) {
	p.mu.Lock()
	p.explained = true
	p.mu.Unlock()
	p.setError(msg)
}

// coreError records an error corebgp reports, unless it is the echo of a
// close we caused and explained (the NOTIFICATION we had it send, or the
// read error on a connection we closed).
func (p *peer) coreError(msg string) {
	p.mu.Lock()
	echo := p.explained
	p.explained = false
	p.mu.Unlock()
	if echo {
		p.log.Debug("bgp session closed", "corebgp", msg)
		return
	}
	p.setError(msg)
}

func (p *peer) lastError() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// updateStateLocked recomputes the shown state and logs changes.
func (p *peer) updateStateLocked() {
	st := StateIdle
	switch {
	case p.sess != nil:
		st = StateEstablished
	case time.Now().Before(p.holdUntil):
		st = StateHeldDown
	default:
		if p.dialing {
			st = StateConnect
		}
		for _, f := range p.fsm {
			// corebgp reports "established" before calling OnEstablished
			// and after OnClose; only the session decides that one.
			if r := fsmRank(f); r > fsmRank(st) && f != StateEstablished {
				st = f
			}
		}
	}
	if st == p.state {
		return
	}
	from := p.state
	p.state, p.since = st, time.Now()
	switch {
	case st == StateEstablished:
		p.log.Info("bgp session established", "families", p.sess.negotiated.String())
	case from == StateEstablished:
		p.log.Warn("bgp session down", "state", st, "last_error", p.lastErr)
	default:
		p.log.Debug("bgp session state", "from", from, "to", st)
	}
}

func (p *peer) status() PeerStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	// A hold-down ends by the clock, not by an event.
	if p.state == StateHeldDown {
		p.updateStateLocked()
	}
	ps := PeerStatus{
		Name:        p.cfg.Name,
		Address:     p.cfg.Address,
		RemoteASN:   p.cfg.RemoteASN,
		IBGP:        p.cfg.ibgp(p.sp.cfg.LocalASN),
		State:       p.state,
		Since:       p.since,
		LastError:   p.lastErr,
		LastErrorAt: p.lastErrAt,
	}
	if s := p.sess; s != nil {
		ps.Families = s.carried().Strings()
		ps.PrefixesSent = int(s.sentCount.Load())
		ps.RoutesReceived = int(s.recvCount.Load())
	}
	return ps
}
