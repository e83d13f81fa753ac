package dnsserver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
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
			pfx, ok := s.tcpPer.acquire(c.RemoteAddr())
			if !ok {
				// One client prefix may not hold every slot.
				<-s.tcpSlots
				s.tcpPer.refused.Add(1)
				c.Close()
				continue
			}
			s.stats.TCPConns.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() { s.tcpPer.release(pfx); <-s.tcpSlots; s.stats.TCPConns.Add(-1) }()
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
			// A transfer is many messages; the handler writes them, each
			// with its own write deadline: a transfer may take as long as
			// it keeps moving, but a client that stops reading is dropped.
			dw := &deadlineWriter{c: c, w: lengthPrefixed{w}, d: s.cfg.TCPIdleTimeout}
			if err := s.cfg.Transfers.Transfer(in[:n], remote, dw); err != nil {
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
			resp = s.handle(&q, out[:0], true, remote.Addr())
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

// deadlineWriter sets the connection's write deadline before each message
// of an outbound transfer.
type deadlineWriter struct {
	c net.Conn
	w io.Writer
	d time.Duration
}

func (d *deadlineWriter) Write(msg []byte) (int, error) {
	d.c.SetWriteDeadline(time.Now().Add(d.d))
	return d.w.Write(msg)
}

// tcpClients counts TCP connections per client prefix, so a handful of
// sources cannot hold every one of the TCPMaxConns slots. The map holds
// at most TCPMaxConns prefixes: entries go when their last connection
// closes.
type tcpClients struct {
	mu      sync.Mutex
	n       map[netip.Prefix]int
	max     int
	p4, p6  int
	refused atomic.Uint64
}

func (t *tcpClients) init(cfg *Config) {
	t.n = map[netip.Prefix]int{}
	t.max = cfg.TCPMaxConnsPerClient
	t.p4, t.p6 = DefaultClientPrefix4, DefaultClientPrefix6
	p4, p6 := cfg.ClientIPv4Prefix, cfg.ClientIPv6Prefix
	if r := cfg.RRL; r != nil && p4 == 0 && p6 == 0 {
		p4, p6 = r.IPv4Prefix, r.IPv6Prefix
	}
	if p4 > 0 && p4 <= 32 {
		t.p4 = p4
	}
	if p6 > 0 && p6 <= 128 {
		t.p6 = p6
	}
}

func (t *tcpClients) prefixOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := t.p6
	if a.Is4() {
		bits = t.p4
	}
	p, _ := a.Prefix(bits)
	return p
}

// acquire counts a connection from addr, or reports false when its
// prefix is at the limit.
func (t *tcpClients) acquire(addr net.Addr) (netip.Prefix, bool) {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Prefix{}, true // not an IP transport: not counted
	}
	p := t.prefixOf(ap.Addr())
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n[p] >= t.max {
		return p, false
	}
	t.n[p]++
	return p, true
}

func (t *tcpClients) release(p netip.Prefix) {
	if !p.IsValid() {
		return
	}
	t.mu.Lock()
	if t.n[p]--; t.n[p] <= 0 {
		delete(t.n, p)
	}
	t.mu.Unlock()
}
