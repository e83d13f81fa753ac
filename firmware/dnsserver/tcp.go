package dnsserver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// listenTCP serves DNS over TCP as RFC 7766 asks: several queries per
// connection (pipelined; answered in order), an idle timeout, and a bound
// on concurrent connections so a flood of idle sockets cannot exhaust a
// 512 MB box.
func (s *Server) listenTCP(addr string) error {
	ln, err := net.Listen(family("tcp", addr), addr)
	if err != nil {
		return err
	}
	s.serveTCPListener(ln)
	return nil
}

// serveTCPListener accepts connections on ln until it or the server is
// closed (ServeListener uses it for listeners the server did not open).
func (s *Server) serveTCPListener(ln net.Listener) {
	s.addCloser(ln.Close)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			select {
			case s.tcpSlots <- struct{}{}:
			default:
				// Over the limit: close at once rather than queue; the
				// client tries another server or again later.
				c.Close()
				continue
			}
			s.stats.TCPConns.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { <-s.tcpSlots; s.stats.TCPConns.Add(-1) }()
				s.serveTCP(c)
			}()
		}
	}()
}

func (s *Server) serveTCP(c net.Conn) {
	defer c.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// Close the connection when the server shuts down.
		select {
		case <-stop:
		case <-s.closing():
			c.Close()
		}
	}()
	r := bufio.NewReaderSize(c, 4096)
	w := bufio.NewWriterSize(c, 4096)
	in := make([]byte, maxMsg)
	out := make([]byte, 0, maxMsg)
	var q query
	sh := s.metrics.tcpShard()
	remote, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	for {
		c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		var lb [2]byte
		if _, err := io.ReadFull(r, lb[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(r, in[:n]); err != nil {
			return
		}
		if !parseQuery(in[:n], &q) {
			return
		}
		var resp []byte
		switch {
		case q.opcode == dns.OpcodeNotify:
			resp = s.notify(&q, out[:0], remote)
		case q.isTransfer() && s.cfg.Transfers != nil:
			// A transfer is many messages; the handler writes them.
			c.SetWriteDeadline(time.Now().Add(10 * s.cfg.TCPIdleTimeout))
			if err := s.cfg.Transfers.Transfer(in[:n], remote, lengthPrefixed{w}); err != nil {
				s.cfg.Logger.Info("dns: transfer ended", "from", remote, "err", err)
				w.Flush()
				return
			}
			if err := w.Flush(); err != nil {
				return
			}
			continue
		default:
			received := time.Now()
			resp = s.handle(&q, out[:0], true)
			sh.count(&q, resp)
			if resp != nil {
				s.tapped(&q, resp, remote, true, received)
				sh.observe(time.Since(received), 1)
			}
		}
		if resp == nil {
			continue
		}
		binary.BigEndian.PutUint16(lb[:], uint16(len(resp)))
		c.SetWriteDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		w.Write(lb[:])
		w.Write(resp)
		// Flush only when no further pipelined query is already buffered,
		// so a burst of queries is answered with few segments.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}
