package dnsserver

import (
	"context"
	"errors"
	"net"
	"syscall"
	"unsafe"

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
}

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
	for i := 0; i < s.cfg.UDPWorkers; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			return "", err
		}
		conn := pc.(*net.UDPConn)
		// Later workers must bind the very port the first one got (":0"),
		// and TCP the same port too.
		addr = conn.LocalAddr().String()
		if i == 0 {
			s.mu.Lock()
			s.addrs = append(s.addrs, addr)
			s.mu.Unlock()
		}
		raw, err := conn.SyscallConn()
		if err != nil {
			conn.Close()
			return "", err
		}
		w := &udpWorker{s: s, conn: conn, raw: raw}
		for j := 0; j < batch; j++ {
			w.in[j] = make([]byte, maxMsg)
			w.out[j] = make([]byte, 0, maxMsg)
		}
		s.addCloser(conn.Close)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			w.loop()
		}()
	}
	return addr, nil
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
		m := 0
		for i := 0; i < n; i++ {
			msg := w.in[i][:w.rmsg[i].len]
			if !parseQuery(msg, &w.q) {
				w.s.stats.Dropped.Add(1)
				continue
			}
			resp := w.s.handle(&w.q, w.out[m][:0], false)
			if resp == nil {
				continue
			}
			w.out[m] = resp[:0]
			w.oiov[m] = unix.Iovec{Base: &resp[0]}
			w.oiov[m].SetLen(len(resp))
			w.smsg[m].hdr = unix.Msghdr{Name: &w.names[i][0], Namelen: w.rmsg[i].hdr.Namelen, Iov: &w.oiov[m], Iovlen: 1}
			m++
		}
		if m > 0 {
			w.send(m)
		}
	}
}

// recv reads up to batch datagrams, parking in the runtime poller when
// none are waiting.
func (w *udpWorker) recv() (int, error) {
	for i := 0; i < batch; i++ {
		w.iov[i] = unix.Iovec{Base: &w.in[i][0]}
		w.iov[i].SetLen(len(w.in[i]))
		w.rmsg[i].hdr = unix.Msghdr{Name: &w.names[i][0], Namelen: uint32(len(w.names[i])), Iov: &w.iov[i], Iovlen: 1}
	}
	var n int
	var serr error
	err := w.raw.Read(func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&w.rmsg[0])), batch, unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false
		}
		if e != 0 {
			serr = e
		}
		n = int(r)
		return true
	})
	if err != nil {
		return 0, err
	}
	return n, serr
}

// send writes m responses, retrying the rest after a partial write and
// dropping a datagram the kernel refuses (the client will retry).
func (w *udpWorker) send(m int) {
	done := 0
	for done < m {
		var sent int
		var serr error
		err := w.raw.Write(func(fd uintptr) bool {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.smsg[done])), uintptr(m-done), unix.MSG_DONTWAIT, 0, 0)
			if e == unix.EAGAIN || e == unix.EINTR {
				return false
			}
			if e != 0 {
				serr = e
			}
			sent = int(r)
			return true
		})
		if err != nil {
			return
		}
		if serr != nil || sent <= 0 {
			w.s.stats.Dropped.Add(1)
			done++ // skip the datagram the kernel refused
			continue
		}
		done += sent
	}
}
