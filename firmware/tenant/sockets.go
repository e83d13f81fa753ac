package tenant

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sockets are a tenant's DNS sockets, bound by the host on the tenant's
// service addresses and handed to each process it starts. The tenant
// itself may not bind (its seccomp filter refuses bind and listen), and
// the host keeps them open across the tenant's restarts, so that its
// addresses never stop being bound while it is configured.
type sockets struct {
	files []*os.File
	kinds []socketKind // per file
}

// socketKind says what a passed file is, in the order they are passed.
type socketKind struct {
	UDP  bool   `json:"udp"`
	Addr string `json:"addr"`
}

// bindSockets binds, on each address and port, perAddr UDP sockets with
// SO_REUSEPORT (the kernel spreads datagrams over them, one worker each)
// and one TCP listener.
func bindSockets(addrs []netip.Addr, port, perAddr int) (*sockets, error) {
	s := &sockets{}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, uint16(port)).String()
		for i := 0; i < perAddr; i++ {
			pc, err := lc.ListenPacket(context.Background(), "udp", ap)
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("udp %s: %w", ap, err)
			}
			f, err := pc.(*net.UDPConn).File()
			pc.Close()
			if err != nil {
				s.Close()
				return nil, err
			}
			s.files = append(s.files, f)
			s.kinds = append(s.kinds, socketKind{UDP: true, Addr: ap})
		}
		ln, err := net.Listen("tcp", ap)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("tcp %s: %w", ap, err)
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close()
		if err != nil {
			s.Close()
			return nil, err
		}
		s.files = append(s.files, f)
		s.kinds = append(s.kinds, socketKind{Addr: ap})
	}
	return s, nil
}

// Close closes every socket: the addresses are no longer bound.
func (s *sockets) Close() error {
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	s.files = nil
	return errors.Join(errs...)
}
