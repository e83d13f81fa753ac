package bgp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// corebgp never dials and never sees a raw socket: every peer is passive
// to it, and it serves one in-process listener (connListener) that yields
// connections this file accepted or dialed, each wrapped in a guardConn.
// Owning the dial also lets status show why a dial failed, which corebgp
// would swallow.

// connectTimeout bounds one TCP connection attempt.
const connectTimeout = 5 * time.Second

// maxRedialDelay caps the backoff between failed dials.
const maxRedialDelay = 30 * time.Second

// connListener hands connections to corebgp's Serve.
type connListener struct {
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newConnListener() *connListener {
	return &connListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{} }

// deliver passes c to corebgp, or closes it if the speaker is stopping.
func (l *connListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// acceptLoop takes connections from a real listener. Unknown neighbours are
// dropped here; corebgp would drop them too, but without a guard to pass.
func (s *Speaker) acceptLoop(ln net.Listener, l *connListener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		ap, err := netipAddrPort(c.RemoteAddr())
		p := s.byAddr[ap.Addr().Unmap().String()]
		if err != nil || p == nil {
			s.log.Debug("bgp connection from unknown neighbour refused", "remote", c.RemoteAddr())
			c.Close()
			continue
		}
		l.deliver(newGuardConn(c, p))
	}
}

// dialLoop keeps an active peer connected: whenever it has no connection
// (and is not held down or damped) it dials, with backoff after failures.
func (p *peer) dialLoop(ctx context.Context, l *connListener) {
	d := net.Dialer{
		Timeout: connectTimeout,
		Control: func(_, _ string, c syscall.RawConn) error {
			if p.cfg.MD5Password == "" {
				return nil
			}
			return setMD5(c, []md5Key{{p.cfg.Address, p.cfg.MD5Password}})
		},
	}
	if p.cfg.LocalAddress.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: p.cfg.LocalAddress.AsSlice()}
	}
	target := net.JoinHostPort(p.cfg.Address.String(), strconv.Itoa(p.cfg.Port))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		busy, wait := p.nextDial()
		if busy || wait > 0 {
			if !busy {
				timer.Reset(wait)
			}
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			case <-timer.C:
			}
			continue
		}
		p.setDialing(true)
		c, err := d.DialContext(ctx, "tcp", target)
		p.setDialing(false)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.dialFailed(err)
			continue
		}
		l.deliver(newGuardConn(c, p))
	}
}

func netipAddrPort(a net.Addr) (ap netip.AddrPort, err error) {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return ap, errors.New("not TCP")
	}
	return t.AddrPort(), nil
}
