package bgp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/jwhited/corebgp"
)

// session is one established BGP session. Its goroutine (run) owns sent and
// is the only writer of UPDATEs; corebgp's FSM goroutine calls handleUpdate.
type session struct {
	p          *peer
	w          corebgp.UpdateMessageWriter
	negotiated familySet
	// carriedFams is negotiated minus families without a next hop; set
	// by run once it has resolved the next hops.
	carriedFams atomic.Uint32
	recv        *received

	done     chan struct{} // closed by stop
	finished chan struct{} // closed when run returns

	sent      map[netip.Prefix]string // prefix → attrKey the neighbour has
	sentCount atomic.Int64
	recvCount atomic.Int64
}

func newSession(p *peer, w corebgp.UpdateMessageWriter, fams familySet) *session {
	s := &session{
		p:          p,
		w:          w,
		negotiated: fams,
		recv:       newReceived(),
		done:       make(chan struct{}),
		finished:   make(chan struct{}),
		sent:       map[netip.Prefix]string{},
	}
	s.carriedFams.Store(uint32(fams))
	return s
}

func (s *session) carried() familySet { return familySet(s.carriedFams.Load()) }

func (s *session) stop() {
	close(s.done)
	<-s.finished
}

// run sends the full desired state, then each change to it, until the
// session closes. Only the latest desired state matters: if routes change
// three times while a slow neighbour is still reading, it gets one diff.
func (s *session) run() {
	defer close(s.finished)
	params, fams := s.resolve()
	s.carriedFams.Store(uint32(fams))
	for {
		if err := s.sync(params, fams, s.p.sp.desired.Load()); err != nil {
			select {
			case <-s.done:
			default:
				s.p.setError("writing UPDATE: " + err.Error())
			}
			// The connection is broken; corebgp notices and calls OnClose.
			<-s.done
			return
		}
		select {
		case <-s.done:
			return
		case <-s.p.kick:
		}
	}
}

// resolve works out the next hops, and drops negotiated families that have
// none.
func (s *session) resolve() (sessionParams, familySet) {
	cfg := s.p.cfg
	params := sessionParams{
		localASN: s.p.sp.cfg.LocalASN,
		ibgp:     cfg.ibgp(s.p.sp.cfg.LocalASN),
		nextHop4: cfg.NextHop4,
		nextHop6: cfg.NextHop6,
	}
	local := cfg.LocalAddress
	if !local.IsValid() {
		var err error
		if local, err = sourceAddr(cfg.Address, cfg.Port); err != nil {
			s.p.setError(fmt.Sprintf("finding our address towards the neighbour: %v", err))
		}
	}
	if !params.nextHop4.IsValid() && local.Is4() {
		params.nextHop4 = local
	}
	if !params.nextHop6.IsValid() && local.Is6() {
		params.nextHop6 = local
	}
	fams := s.negotiated
	if fams.has(famIPv4) && !params.nextHop4.IsValid() {
		fams &^= famIPv4
		s.p.setError("no IPv4 next hop: IPv4 routes not sent")
	}
	if fams.has(famIPv6) && !params.nextHop6.IsValid() {
		fams &^= famIPv6
		s.p.setError("no IPv6 next hop: IPv6 routes not sent")
	}
	return params, fams
}

// sourceAddr asks the kernel which source address it would use towards
// addr. corebgp does not expose the TCP connection, but connecting a UDP
// socket does the same route lookup without sending anything.
func sourceAddr(addr netip.Addr, port int) (netip.Addr, error) {
	c, err := net.Dial("udp", net.JoinHostPort(addr.String(), strconv.Itoa(port)))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap(), nil
}

// announcement is a batch of prefixes of one family sharing attributes.
type announcement struct {
	fam      familySet
	route    *ribRoute
	prefixes []netip.Prefix
}

// sync sends what it takes to bring the neighbour from sent to desired.
func (s *session) sync(params sessionParams, fams familySet, desired *rib) error {
	var batches []*announcement
	byKey := map[string]*announcement{}
	for _, pfx := range desired.sorted {
		r := desired.routes[pfx]
		fam := familyOf(pfx)
		if !fams.has(fam) || s.sent[pfx] == r.key {
			continue
		}
		k := fam.String() + " " + r.key
		b := byKey[k]
		if b == nil {
			b = &announcement{fam: fam, route: r}
			byKey[k] = b
			batches = append(batches, b)
		}
		b.prefixes = append(b.prefixes, pfx)
	}
	var gone [2][]netip.Prefix // IPv4, IPv6
	for pfx := range s.sent {
		if _, ok := desired.routes[pfx]; !ok {
			i := 0
			if familyOf(pfx) == famIPv6 {
				i = 1
			}
			gone[i] = append(gone[i], pfx)
		}
	}

	for _, b := range batches {
		msgs, err := params.announce(b.fam, b.route, b.prefixes)
		if err != nil {
			// A route we cannot encode must not stop the others.
			s.p.setError(fmt.Sprintf("encoding %v: %v", b.prefixes[0], err))
			continue
		}
		if err := s.write(msgs); err != nil {
			return err
		}
		for _, pfx := range b.prefixes {
			s.sent[pfx] = b.route.key
		}
		s.sentCount.Store(int64(len(s.sent)))
	}
	for i, fam := range []familySet{famIPv4, famIPv6} {
		if len(gone[i]) == 0 {
			continue
		}
		slices.SortFunc(gone[i], comparePrefix)
		msgs, err := withdraw(fam, gone[i])
		if err != nil {
			s.p.setError(fmt.Sprintf("encoding withdrawal: %v", err))
			continue
		}
		if err := s.write(msgs); err != nil {
			return err
		}
		for _, pfx := range gone[i] {
			delete(s.sent, pfx)
		}
		s.sentCount.Store(int64(len(s.sent)))
	}
	return nil
}

func (s *session) write(msgs [][]byte) error {
	for _, m := range msgs {
		if err := s.w.WriteUpdate(m); err != nil {
			return err
		}
	}
	return nil
}

// handleUpdate counts what the neighbour announces and drops it.
func (s *session) handleUpdate(_ corebgp.PeerConfig, body []byte) *corebgp.Notification {
	if n := s.recv.update(body); n != nil {
		s.p.closedByUs("malformed UPDATE from neighbour: " + n.Error())
		return n
	}
	c := s.recv.count()
	s.recvCount.Store(int64(c))
	if m := s.p.cfg.MaxPrefixes; m > 0 && c > m {
		return s.p.maxPrefixExceeded(c, s.recv.lastFamily)
	}
	return nil
}
