package dnsserver

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Sockets the server did not open itself: the tailnet's, which live in a
// userspace network stack (tsnet) rather than the kernel, so recvmmsg and
// SO_REUSEPORT do not apply. They carry zone transfers, NOTIFY and the odd
// operator's query, not the public load, so one goroutine per socket
// reading a datagram at a time is enough.

// ServeListener answers DNS over TCP on ln (queries, NOTIFY, AXFR/IXFR
// through the transfer handler) until ln or the server is closed.
func (s *Server) ServeListener(ln net.Listener) error {
	if !s.adopt(nil) {
		ln.Close()
		return net.ErrClosed
	}
	// Held while serveTCPListener adds its own: Close cannot be waiting
	// for the workers in between.
	defer s.wg.Done()
	s.serveTCPListener(ln)
	return nil
}

// ServePacketConn answers DNS over UDP on pc until pc or the server is
// closed.
func (s *Server) ServePacketConn(pc net.PacketConn) error {
	if !s.adopt(pc) {
		pc.Close()
		return net.ErrClosed
	}
	go func() {
		defer s.wg.Done()
		s.servePacketConn(pc)
	}()
	return nil
}

// adopt counts one more worker and has Close close c, unless the server is
// closing already. It holds s.mu, which Close takes after marking itself
// closing, so a socket is either refused here or closed and waited for
// there, however the two race.
func (s *Server) adopt(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return false
	default:
	}
	if c != nil {
		s.closers = append(s.closers, c.Close)
	}
	s.wg.Add(1)
	return true
}

func (s *Server) servePacketConn(pc net.PacketConn) {
	sh := s.metrics.packetShard()
	in := make([]byte, maxUDPQuery)
	out := make([]byte, 0, s.cfg.MaxUDPSize+512)
	var q query
	for {
		n, addr, err := pc.ReadFrom(in)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				select {
				case <-s.closing():
				default:
					s.cfg.Logger.Warn("dns: packet socket read", "addr", pc.LocalAddr(), "err", err)
				}
			}
			return
		}
		received := time.Now()
		if !parseQuery(in[:n], &q) {
			s.stats.Dropped.Add(1)
			continue
		}
		from := addrPortOf(addr)
		if reflectorPort(from.Port()) {
			s.stats.Dropped.Add(1)
			continue
		}
		var resp []byte
		if q.opcode == dns.OpcodeNotify {
			resp = s.notify(&q, out[:0], from)
		} else {
			resp = s.handle(&q, out[:0], false, from.Addr())
			sh.count(&q, resp)
			if resp != nil {
				s.tapped(&q, resp, from, false, received)
			}
		}
		if resp == nil {
			continue
		}
		if _, err := pc.WriteTo(resp, addr); err != nil {
			s.stats.Dropped.Add(1)
			continue
		}
		sh.observe(time.Since(received), 1)
	}
}

// addrPortOf turns a socket's address into an AddrPort without the
// v4-in-v6 mapping, as the transfer handler's ACLs expect.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
