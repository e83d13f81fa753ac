package bfd

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	crand "crypto/rand"
)

// Server runs the BFD sessions.
type Server struct {
	cfg      Config
	log      *slog.Logger
	sessions []*session
	byDiscr  map[uint32]*session
	byPeer   map[netip.Addr]*session
}

// SessionStatus is one session as status pages show it.
type SessionStatus struct {
	Name        string
	Peer        netip.Addr
	State       State
	Since       time.Time
	Diag        Diag // our reason for the last change
	RemoteState State
	// TxInterval is the agreed interval we send at (before jitter), and
	// DetectionTime how long we wait for the neighbour before declaring
	// it down; both follow negotiation with the neighbour.
	TxInterval    time.Duration
	DetectionTime time.Duration
}

// New validates cfg and builds the sessions; nothing touches the network
// until Run.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var seed [16]byte
	crand.Read(seed[:])
	rng := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	s := &Server{cfg: cfg, log: logger, byDiscr: map[uint32]*session{}, byPeer: map[netip.Addr]*session{}}
	for _, sc := range cfg.Sessions {
		// Discriminators are random and unique, so that a neighbour that
		// restarts cannot be mistaken for its old session (6.8.1).
		var d uint32
		for d == 0 || s.byDiscr[d] != nil {
			d = rng.Uint32()
		}
		ss := &session{
			cfg: sc,
			srv: s,
			log: logger.With("bfd_peer", sc.Name),
			rx:  make(chan *packet, 16),
			m:   newMachine(timers{sc.DesiredMinTx, sc.RequiredMinRx, sc.DetectMult}, d),
			rng: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())),
		}
		ss.since = time.Now()
		s.sessions = append(s.sessions, ss)
		s.byDiscr[d] = ss
		s.byPeer[sc.Peer] = ss
	}
	return s, nil
}

// Run runs the sessions until ctx is cancelled; then each says AdminDown
// to its neighbour and Run returns nil. It returns an error at once if a
// socket cannot be opened.
func (s *Server) Run(ctx context.Context) error {
	var recvs []*receiver
	closeAll := func() {
		for _, r := range recvs {
			r.conn.Close()
		}
	}
	for _, a := range s.cfg.ListenAddrs {
		r, err := listen(ctx, a)
		if err != nil {
			closeAll()
			return err
		}
		recvs = append(recvs, r)
	}
	senders := make([]*sender, len(s.sessions))
	for i, ss := range s.sessions {
		snd, err := newSender(ss.cfg.Local, ss.cfg.Peer, ss.cfg.Interface, ss.cfg.Port, ss.rng)
		if err != nil {
			closeAll()
			for _, o := range senders[:i] {
				o.conn.Close()
			}
			return fmt.Errorf("bfd: session %s: %w", ss.cfg.Name, err)
		}
		senders[i] = snd
	}
	s.log.Info("bfd running", "sessions", len(s.sessions), "listen", s.cfg.ListenAddrs)
	var wg sync.WaitGroup
	for _, r := range recvs {
		wg.Go(func() { s.receive(ctx, r) })
	}
	for i, ss := range s.sessions {
		wg.Go(func() { ss.run(ctx, senders[i]) })
	}
	<-ctx.Done()
	closeAll() // ends the receive loops
	wg.Wait()
	return nil
}

// receive reads one socket and hands each acceptable packet to its session.
func (s *Server) receive(ctx context.Context, r *receiver) {
	buf := make([]byte, 512)
	for {
		n, src, ttl, err := r.read(buf)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("bfd receive", "err", err)
			}
			return
		}
		if ttl != requiredTTL {
			// GTSM (RFC 5881 section 5): a packet that crossed a router,
			// or whose TTL we cannot see, may be forged from afar.
			s.log.Debug("bfd packet dropped: TTL", "src", src, "ttl", ttl)
			continue
		}
		p, err := parse(buf[:n])
		if err != nil {
			s.log.Debug("bfd packet dropped", "src", src, "err", err)
			continue
		}
		ss := s.match(p, src)
		if ss == nil {
			s.log.Debug("bfd packet for no session", "src", src, "your_discr", p.yourDiscr)
			continue
		}
		select {
		case ss.rx <- p:
		default:
			// A flood for one session must not stall the others; losing
			// packets is what BFD is built to tolerate.
		}
	}
}

// match selects the session: by our discriminator when the neighbour knows
// it, else by source address (RFC 5880 6.8.6, RFC 5881 section 3). Either
// way the source must be the session's neighbour.
func (s *Server) match(p *packet, src netip.Addr) *session {
	var ss *session
	if p.yourDiscr != 0 {
		ss = s.byDiscr[p.yourDiscr]
	} else {
		ss = s.byPeer[src]
	}
	if ss == nil || ss.cfg.Peer.WithZone("") != src.WithZone("") {
		return nil
	}
	return ss
}

// Status reports every session, in configuration order.
func (s *Server) Status() []SessionStatus {
	out := make([]SessionStatus, len(s.sessions))
	for i, ss := range s.sessions {
		out[i] = ss.status()
	}
	return out
}
