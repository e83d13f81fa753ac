package tenant

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// sockets are a tenant's DNS sockets, bound by the host on the tenant's
// service addresses and handed to each process it starts. The tenant
// itself may not bind (its seccomp filter refuses bind and listen), and
// the host keeps them open across the tenant's restarts, so that its
// addresses never stop being bound while it is configured.
//
// The host only holds them: they are made with plain socket calls, in
// blocking mode, so that Go never registers them with the host's own
// network poller. A socket made through package net and kept as a File
// stays in the host's epoll set (a File of a non-blocking socket is
// polled too), and since it is the very socket the tenant reads, every
// datagram the tenant was sent, and every reply it sent, woke the host's
// poller as well: the host spent 3 to 4 µs of CPU per query doing nothing
// (measured with `make bench BENCHFLAGS=-tenants 1`, test/bench/README.md),
// which made a tenant cost 1.5 times a plain node.
type sockets struct {
	files []*os.File
	kinds []socketKind // per file
}

// socketKind says what a passed file is, in the order they are passed.
type socketKind struct {
	UDP  bool   `json:"udp"`
	Addr string `json:"addr"`
}

// udpBuffer is the receive and send buffer of a tenant's UDP sockets, the
// size a node's own sockets ask for (dnsserver's udpSocketBuffer). The
// host sets it with SO_RCVBUFFORCE, past net.core.rmem_max: the tenant
// cannot (no CAP_NET_ADMIN), and with Linux's default of about 208 KiB a
// busy tenant drops datagrams whenever it is off the CPU for a moment.
const udpBuffer = 4 << 20

// listenBacklog is the TCP listeners' backlog (the kernel caps it at
// net.core.somaxconn, as it does for package net's listeners).
const listenBacklog = 4096

// bindSockets binds, on each address and port, perAddr UDP sockets with
// SO_REUSEPORT (the kernel spreads datagrams over them, one worker each)
// and one TCP listener.
func bindSockets(addrs []netip.Addr, port, perAddr int) (*sockets, error) {
	s := &sockets{}
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, uint16(port))
		for i := 0; i < perAddr; i++ {
			f, err := bindSocket(ap, true)
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("udp %s: %w", ap, err)
			}
			s.files = append(s.files, f)
			s.kinds = append(s.kinds, socketKind{UDP: true, Addr: ap.String()})
		}
		f, err := bindSocket(ap, false)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("tcp %s: %w", ap, err)
		}
		s.files = append(s.files, f)
		s.kinds = append(s.kinds, socketKind{Addr: ap.String()})
	}
	return s, nil
}

// bindSocket makes one UDP socket (SO_REUSEPORT, large buffers) or TCP
// listener (SO_REUSEADDR, as package net makes them) bound on ap, close
// on exec and blocking (the tenant's runtime makes its copy non-blocking).
func bindSocket(ap netip.AddrPort, udp bool) (*os.File, error) {
	family, sa := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16(), ZoneId: zoneID(ap.Addr())}
	}
	typ := unix.SOCK_STREAM
	if udp {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	set := func(level, opt, v int, name string) error {
		if err := unix.SetsockoptInt(fd, level, opt, v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	if family == unix.AF_INET6 {
		if err := set(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1, "IPV6_V6ONLY"); err != nil {
			return nil, err
		}
	}
	if udp {
		if err := set(unix.SOL_SOCKET, unix.SO_REUSEPORT, 1, "SO_REUSEPORT"); err != nil {
			return nil, err
		}
		// As root past the sysctl caps; else as far as they allow.
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], udpBuffer) != nil {
				unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[1], udpBuffer)
			}
		}
	} else if err := set(unix.SOL_SOCKET, unix.SO_REUSEADDR, 1, "SO_REUSEADDR"); err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	if !udp {
		if err := unix.Listen(fd, listenBacklog); err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
	}
	ok = true
	return os.NewFile(uintptr(fd), ap.String()), nil
}

// zoneID is a link-local address's interface index (0 for none).
func zoneID(a netip.Addr) uint32 {
	if a.Zone() == "" {
		return 0
	}
	ifi, err := net.InterfaceByName(a.Zone())
	if err != nil {
		return 0
	}
	return uint32(ifi.Index)
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
