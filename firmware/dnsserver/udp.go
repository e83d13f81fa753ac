package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// batch is how many datagrams one recvmmsg/sendmmsg call moves.
const batch = 32

// mmsghdr mirrors struct mmsghdr; Go's alignment rules add the same
// trailing padding the C struct has on 64-bit targets.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// udpWorker owns one SO_REUSEPORT socket and every buffer it needs, so the
// loop allocates nothing per query: the kernel spreads datagrams over the
// sockets, and each worker reads a batch, answers it and writes a batch.
type udpWorker struct {
	s     *Server
	conn  *net.UDPConn
	raw   syscall.RawConn
	in    [batch][]byte
	out   [batch][]byte
	names [batch][unix.SizeofSockaddrInet6]byte
	iov   [batch]unix.Iovec
	oiov  [batch]unix.Iovec
	rmsg  [batch]mmsghdr
	smsg  [batch]mmsghdr
	q     query
	// pktinfo is set for sockets bound to a wildcard address: the reply
	// must leave from the address the query came to (an anycast address
	// on lo), not whatever the routing table picks, so the destination of
	// each datagram is received and given back as the reply's source.
	pktinfo bool
	ctrl    [batch][ctrlSize]byte

	sh *shard // this worker's counters (metrics.go)

	recvFn, sendFn      func(fd uintptr) bool
	used                int // receive headers the last recvmmsg filled
	n                   int
	errno               syscall.Errno
	sendFrom, sendCount int
}

const ctrlSize = 64

// maxUDPQuery is the largest query datagram read; anything longer arrives
// with MSG_TRUNC set and is dropped.
const maxUDPQuery = 4096

func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func (s *Server) listenUDP(addr string) (string, error) {
	lc := net.ListenConfig{Control: reusePort}
	network := family("udp", addr)
	for i := 0; i < s.cfg.UDPWorkers; i++ {
		pc, err := lc.ListenPacket(context.Background(), network, addr)
		if err != nil {
			return "", err
		}
		conn := pc.(*net.UDPConn)
		// Later workers must bind the very port the first one got (":0"),
		// and TCP the same port too.
		addr = conn.LocalAddr().String()
		if err := s.serveUDP(conn, i == 0); err != nil {
			conn.Close()
			return "", err
		}
	}
	return addr, nil
}

// ServeUDP answers DNS on a UDP socket someone else bound (a tenant's,
// bound by the host on the tenant's service address with SO_REUSEPORT,
// one per core), with the same batched worker as the server's own
// sockets. The socket is closed with the server.
func (s *Server) ServeUDP(conn *net.UDPConn) error {
	addr := conn.LocalAddr().String()
	s.mu.Lock()
	first := !slices.Contains(s.addrs, addr)
	s.mu.Unlock()
	return s.serveUDP(conn, first)
}

// serveUDP starts a worker on conn; first records its address in Addrs.
func (s *Server) serveUDP(conn *net.UDPConn, first bool) error {
	if first {
		s.mu.Lock()
		s.addrs = append(s.addrs, conn.LocalAddr().String())
		s.mu.Unlock()
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	if err := growBuffers(raw); err != nil {
		s.cfg.Logger.Warn("dns: udp socket buffers", "addr", conn.LocalAddr().String(), "err", err)
	}
	w := &udpWorker{s: s, conn: conn, raw: raw, sh: s.metrics.udpShard()}
	w.newFns()
	if ua := conn.LocalAddr().(*net.UDPAddr); ua.IP.IsUnspecified() {
		if err := enablePktinfo(raw, ua.IP.To4() == nil); err != nil {
			return err
		}
		w.pktinfo = true
	}
	// Buffers are sized for what UDP carries, not for 64 KiB
	// messages: queries are small (a larger datagram is dropped as
	// truncated), replies never exceed MaxUDPSize. 32 of each per
	// worker is what a 512 MB box can spare.
	outSize := s.cfg.MaxUDPSize + 512
	if outSize < 4096 {
		outSize = 4096
	}
	for j := 0; j < batch; j++ {
		w.in[j] = make([]byte, maxUDPQuery)
		w.out[j] = make([]byte, 0, outSize)
	}
	w.initRecv()
	s.addCloser(conn.Close)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		w.loop()
	}()
	return nil
}

func (w *udpWorker) loop() {
	for {
		n, err := w.recv()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			w.s.cfg.Logger.Warn("dns: udp read", "err", err)
			continue
		}
		received := time.Now()
		recvNano := received.UnixNano()
		m := 0
		for i := 0; i < n; i++ {
			if w.rmsg[i].hdr.Flags&unix.MSG_TRUNC != 0 || int(w.rmsg[i].len) > maxUDPQuery {
				w.s.stats.Dropped.Add(1)
				continue
			}
			from := sockaddrToAddrPort(&w.names[i])
			msg := w.in[i][:w.rmsg[i].len]
			if reflectorPort(from.Port()) || !parseQuery(msg, &w.q) {
				w.s.stats.Dropped.Add(1)
				continue
			}
			w.q.recv = recvNano // one clock read per batch
			var resp []byte
			if w.q.opcode == dns.OpcodeNotify {
				resp = w.s.notify(&w.q, w.out[m][:0], from)
			} else {
				resp = w.s.handle(&w.q, w.out[m][:0], false, from.Addr())
				w.answered(i, resp, received)
			}
			if resp == nil {
				continue
			}
			w.out[m] = resp[:0]
			w.oiov[m] = unix.Iovec{Base: &resp[0]}
			w.oiov[m].SetLen(len(resp))
			w.smsg[m].hdr = unix.Msghdr{Name: &w.names[i][0], Namelen: w.rmsg[i].hdr.Namelen, Iov: &w.oiov[m], Iovlen: 1}
			if w.pktinfo && w.rmsg[i].hdr.Controllen > 0 {
				replySource(w.ctrl[i][:w.rmsg[i].hdr.Controllen])
				w.smsg[m].hdr.Control = &w.ctrl[i][0]
				w.smsg[m].hdr.SetControllen(int(w.rmsg[i].hdr.Controllen))
			}
			m++
		}
		if m > 0 {
			w.send(m)
			w.sh.observe(time.Since(received), m)
		}
	}
}

// recv reads up to batch datagrams, parking in the runtime poller when
// none are waiting. The headers are set up once (initRecv); the kernel
// writes back only the address, control and flags lengths of the ones it
// filled, so only those are reset: at low load a batch is one datagram,
// and resetting all 32 cost more than answering it.
func (w *udpWorker) recv() (int, error) {
	for i := 0; i < w.used; i++ {
		h := &w.rmsg[i].hdr
		h.Namelen = uint32(len(w.names[i]))
		h.Flags = 0
		if w.pktinfo {
			h.SetControllen(ctrlSize)
		}
	}
	w.used = 0
	w.n, w.errno = 0, 0
	if err := w.raw.Read(w.recvFn); err != nil {
		return 0, err
	}
	if w.errno != 0 {
		return 0, w.errno
	}
	// One past the last filled: cheap insurance should the kernel have
	// touched the header it stopped at.
	w.used = min(w.n+1, batch)
	return w.n, nil
}

// initRecv points every receive header at its buffers.
func (w *udpWorker) initRecv() {
	for i := 0; i < batch; i++ {
		w.iov[i] = unix.Iovec{Base: &w.in[i][0]}
		w.iov[i].SetLen(len(w.in[i]))
		w.rmsg[i].hdr = unix.Msghdr{Name: &w.names[i][0], Namelen: uint32(len(w.names[i])), Iov: &w.iov[i], Iovlen: 1}
		if w.pktinfo {
			w.rmsg[i].hdr.Control = &w.ctrl[i][0]
			w.rmsg[i].hdr.SetControllen(ctrlSize)
		}
	}
}

// recvmmsg and sendmmsg are the functions handed to the runtime poller.
// They are made once per worker (see newFns) and keep their results in the
// worker: a closure built per call would allocate on every batch.
//
// Both are raw system calls: with MSG_DONTWAIT they never block, and a
// sendmmsg of 32 answers can outlast the 20 µs after which the runtime's
// monitor takes the processor away from a goroutine in a system call —
// handing it to another thread, waking it with a futex, and keeping the
// monitor itself polling every 20 µs. Under dnsperf load that was 5,213
// futex and 18,286 nanosleep calls in 3 s; raw, 11 and 561, and 3-4%
// less CPU per query.
func (w *udpWorker) recvmmsg(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&w.rmsg[0])), batch, unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	w.n, w.errno = int(r), e
	return true
}

func (w *udpWorker) sendmmsg(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.smsg[w.sendFrom])), uintptr(w.sendCount), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	w.n, w.errno = int(r), e
	return true
}

func (w *udpWorker) newFns() {
	w.recvFn = w.recvmmsg
	w.sendFn = w.sendmmsg
}

// send writes m responses, retrying the rest after a partial write and
// dropping a datagram the kernel refuses (the client will retry).
func (w *udpWorker) send(m int) {
	done := 0
	for done < m {
		w.sendFrom, w.sendCount = done, m-done
		w.n, w.errno = 0, 0
		if err := w.raw.Write(w.sendFn); err != nil {
			return
		}
		if w.errno != 0 || w.n <= 0 {
			w.s.stats.Dropped.Add(1)
			done++ // skip the datagram the kernel refused
			continue
		}
		done += w.n
	}
}

// udpSocketBuffer is the receive and send buffer each UDP socket asks
// for. Linux's default (about 208 KiB, some 270 queries of the kernel's
// per-datagram overhead) fills within a millisecond at a few hundred
// thousand queries a second whenever the worker is off the CPU — a
// scheduler tick, a zone swap's page faults — and every datagram past it
// is lost. 4 MiB holds several milliseconds of such a flood; it is a limit,
// not an allocation: memory is used only while datagrams wait.
const udpSocketBuffer = 4 << 20

// growBuffers raises the socket's buffers to udpSocketBuffer. SO_RCVBUF
// is capped by net.core.rmem_max (wmem_max for sending); as root the
// FORCE variants pass the cap, so a box need not be tuned by hand. A
// buffer already that large is left alone: a tenant's sockets come sized
// by its host, and the tenant, not root, would shrink them to the cap.
func growBuffers(raw syscall.RawConn) error {
	var serr error
	err := raw.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, o[1]); err == nil && v >= udpSocketBuffer {
				continue
			}
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], udpSocketBuffer) == nil {
				continue
			}
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], udpSocketBuffer); err != nil {
				serr = err
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func enablePktinfo(raw syscall.RawConn, v6 bool) error {
	var serr error
	err := raw.Control(func(fd uintptr) {
		if v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			// A v6 wildcard socket also receives v4-mapped traffic.
			if serr == nil {
				unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			}
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// replySource turns the control messages received with a datagram into
// the ones to send with its reply, in place: IP_PKTINFO's destination
// address becomes the source (spec_dst) and the interface is left to
// routing; IPV6_PKTINFO already has the right shape.
func replySource(ctrl []byte) {
	hdrLen := unix.CmsgLen(0)
	for len(ctrl) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(ctrl) {
			return
		}
		data := ctrl[hdrLen:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			pi.Ifindex = 0
			pi.Spec_dst = pi.Addr
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			if pi.Addr[0] != 0xfe || pi.Addr[1]&0xc0 != 0x80 {
				pi.Ifindex = 0 // keep the interface only for link-local
			}
		}
		step := unix.CmsgSpace(l - hdrLen)
		if step > len(ctrl) {
			return
		}
		ctrl = ctrl[step:]
	}
}

// family picks udp4/udp6 (tcp4/tcp6) from the address, so "0.0.0.0" means
// IPv4 only rather than Go's dual-stack socket.
func family(proto, addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return proto
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.To4() != nil {
			return proto + "4"
		}
		return proto + "6"
	}
	return proto
}

// sockaddrToAddrPort decodes the raw source address recvmmsg filled in.
func sockaddrToAddrPort(b *[unix.SizeofSockaddrInet6]byte) netip.AddrPort {
	port := binary.BigEndian.Uint16(b[2:4])
	switch *(*uint16)(unsafe.Pointer(&b[0])) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])).Unmap(), port)
	}
	return netip.AddrPort{}
}

// reflectorPort reports whether a datagram from this source port must get
// no reply: port 0 cannot be answered, and echo (7), daytime (13), chargen
// (19) and time (37) answer anything sent to them, so a query spoofed
// from one of them would start a loop between two servers.
func reflectorPort(p uint16) bool {
	switch p {
	case 0, 7, 13, 19, 37:
		return true
	}
	return false
}
