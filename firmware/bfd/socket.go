package bfd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// RFC 5881 section 4: Control packets go to UDP 3784 from a source port in
// 49152-65535, with TTL (hop limit) 255; section 5: a receiver drops any
// that arrive with less, which proves the sender is on the link (GTSM).
const (
	ControlPort  = 3784
	minSrcPort   = 49152
	maxSrcPort   = 65535
	requiredTTL  = 255
	srcPortTries = 64
)

// receiver reads Control packets from one listening socket, with the TTL
// each arrived with.
type receiver struct {
	conn net.PacketConn
	v4   *ipv4.PacketConn
	v6   *ipv6.PacketConn
}

// listen opens a receiving socket on addr ("0.0.0.0:3784", "[::]:3784").
// IPv4 and IPv6 get separate sockets: the TTL of an IPv4 packet is not
// reported on an IPv6 socket as a hop limit.
func listen(ctx context.Context, addr string) (*receiver, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("bfd: listen address %q: %w", addr, err)
	}
	network := "udp4"
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		network = "udp6"
	}
	var lc net.ListenConfig
	c, err := lc.ListenPacket(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("bfd: listen on %s: %w", addr, err)
	}
	r := &receiver{conn: c}
	if network == "udp4" {
		r.v4 = ipv4.NewPacketConn(c)
		err = r.v4.SetControlMessage(ipv4.FlagTTL, true)
	} else {
		r.v6 = ipv6.NewPacketConn(c)
		err = r.v6.SetControlMessage(ipv6.FlagHopLimit, true)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("bfd: receiving TTL on %s: %w", addr, err)
	}
	return r, nil
}

// read returns the next packet, its source and the TTL it arrived with
// (-1 if the kernel did not say).
func (r *receiver) read(buf []byte) (n int, src netip.Addr, ttl int, err error) {
	var from net.Addr
	ttl = -1
	if r.v4 != nil {
		var cm *ipv4.ControlMessage
		n, cm, from, err = r.v4.ReadFrom(buf)
		if cm != nil {
			ttl = cm.TTL
		}
	} else {
		var cm *ipv6.ControlMessage
		n, cm, from, err = r.v6.ReadFrom(buf)
		if cm != nil {
			ttl = cm.HopLimit
		}
	}
	if err != nil {
		return 0, netip.Addr{}, 0, err
	}
	if ua, ok := from.(*net.UDPAddr); ok {
		src = ua.AddrPort().Addr().Unmap()
	}
	return n, src, ttl, nil
}

// sender is a session's sending socket: bound to its own source port in
// the RFC 5881 range, TTL 255, optionally tied to an interface.
type sender struct {
	conn *net.UDPConn
	dst  *net.UDPAddr
}

func newSender(local, peer netip.Addr, iface string, port int, rng *rand.Rand) (*sender, error) {
	network, ttlErr := "udp4", error(nil)
	if peer.Is6() {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if iface != "" {
				// Needed for link-local neighbours, and keeps packets on
				// the link the session is about.
				serr = unix.BindToDevice(int(fd), iface)
			}
		})
		return errors.Join(err, serr)
	}}
	var lastErr error
	for range srcPortTries {
		p := minSrcPort + rng.IntN(maxSrcPort-minSrcPort+1)
		laddr := net.JoinHostPort("", strconv.Itoa(p))
		if local.IsValid() {
			laddr = net.JoinHostPort(local.String(), strconv.Itoa(p))
		}
		c, err := lc.ListenPacket(context.Background(), network, laddr)
		if err != nil {
			lastErr = err
			if errors.Is(err, syscall.EADDRINUSE) {
				continue
			}
			return nil, err
		}
		uc := c.(*net.UDPConn)
		if network == "udp4" {
			ttlErr = ipv4.NewPacketConn(uc).SetTTL(requiredTTL)
		} else {
			ttlErr = ipv6.NewPacketConn(uc).SetHopLimit(requiredTTL)
		}
		if ttlErr != nil {
			uc.Close()
			return nil, fmt.Errorf("setting TTL 255: %w", ttlErr)
		}
		return &sender{conn: uc, dst: net.UDPAddrFromAddrPort(netip.AddrPortFrom(peer, uint16(port)))}, nil
	}
	return nil, fmt.Errorf("no free source port: %w", lastErr)
}

func (s *sender) send(p *packet) error {
	_, err := s.conn.WriteToUDP(p.marshal(), s.dst)
	return err
}
