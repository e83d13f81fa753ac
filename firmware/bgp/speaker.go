package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/jwhited/corebgp"
)

// Speaker is the node's BGP speaker. Create it with New, start it with Run,
// and tell it what to announce with SetRoutes, before or after Run.
type Speaker struct {
	cfg     Config
	log     *slog.Logger
	peers   []*peer
	byAddr  map[string]*peer // keyed as corebgp prints addresses
	desired atomic.Pointer[rib]
	running atomic.Bool
}

// New validates cfg and builds a speaker; nothing touches the network
// until Run.
func New(cfg Config, logger *slog.Logger) (*Speaker, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Speaker{cfg: cfg, log: logger, byAddr: map[string]*peer{}}
	for _, pc := range cfg.Peers {
		p := newPeer(s, pc)
		s.peers = append(s.peers, p)
		s.byAddr[pc.Address.String()] = p
	}
	empty, _ := newRIB(nil)
	s.desired.Store(empty)
	return s, nil
}

// Run runs the sessions until ctx is cancelled, then closes them with a
// CEASE and returns nil; it returns early with an error if a listener
// cannot be opened or fails. Run may be called once.
//
// Run installs the speaker as corebgp's logger, which is process-wide:
// only one Speaker should run in a process at a time.
func (s *Speaker) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("bgp: Run called twice")
	}
	srv, err := corebgp.NewServer(s.cfg.RouterID)
	if err != nil {
		return err
	}
	corebgp.SetLogger(s.coreLog)
	var keys []md5Key
	for _, p := range s.peers {
		if err := srv.AddPeer(p.corebgpConfig(), p, p.options()...); err != nil {
			return err
		}
		if p.cfg.MD5Password != "" {
			keys = append(keys, md5Key{p.cfg.Address, p.cfg.MD5Password})
		}
	}
	lis, err := listen(ctx, s.cfg.ListenAddrs, keys)
	if err != nil {
		return err
	}
	s.log.Info("bgp speaker running", "asn", s.cfg.LocalASN, "router_id", s.cfg.RouterID,
		"peers", len(s.peers), "listen", s.cfg.ListenAddrs)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns := newConnListener()
	var wg sync.WaitGroup
	failed := make(chan error, len(lis)+1)
	for _, ln := range lis {
		wg.Go(func() {
			if err := s.acceptLoop(ln, conns); ctx.Err() == nil {
				failed <- fmt.Errorf("bgp: accepting on %v: %w", ln.Addr(), err)
			}
		})
	}
	for _, p := range s.peers {
		if !p.cfg.Passive {
			wg.Go(func() { p.dialLoop(ctx, conns) })
		}
	}
	wg.Go(func() {
		if err := srv.Serve([]net.Listener{conns}); ctx.Err() == nil {
			failed <- err
		}
	})

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-failed:
	}
	cancel()
	for _, ln := range lis {
		ln.Close()
	}
	srv.Close() // sends CEASE on established sessions
	conns.Close()
	wg.Wait()
	return runErr
}

// SetRoutes replaces the set of announced routes. Every established
// session is brought to the new set (announcing new and changed routes,
// withdrawing the rest) in its own goroutine; sessions that come up later
// get the whole set. SetRoutes does not wait for any peer. It fails, and
// changes nothing, if a route is invalid or a prefix is listed twice.
func (s *Speaker) SetRoutes(routes []Route) error {
	r, err := newRIB(routes)
	if err != nil {
		return err
	}
	s.desired.Store(r)
	for _, p := range s.peers {
		select {
		case p.kick <- struct{}{}:
		default: // a wake-up is already pending; it will see r
		}
	}
	return nil
}

// DropSession takes the named peer's session down at once, recording
// reason as its last error; the speaker then reconnects as usual. It is for
// failures BGP cannot see in time, such as BFD declaring the path down (RFC
// 5882): the neighbour, which sees the same failure, withdraws our routes.
func (s *Speaker) DropSession(name, reason string) error {
	for _, p := range s.peers {
		if p.cfg.Name == name {
			p.drop(reason)
			return nil
		}
	}
	return fmt.Errorf("bgp: no peer named %q", name)
}

// Status reports every configured peer, in configuration order.
func (s *Speaker) Status() []PeerStatus {
	out := make([]PeerStatus, len(s.peers))
	for i, p := range s.peers {
		out[i] = p.status()
	}
	return out
}
