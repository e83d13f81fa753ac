package xfr

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Remote is a server we talk to: a primary we transfer from or a
// downstream we notify.
type Remote struct {
	Addr netip.AddrPort
	// Key signs what we send and must sign what comes back; nil for none.
	Key *Key
	// Source is the local address to send from; the zero value lets the
	// kernel choose. Primaries commonly allow transfers by source address.
	Source netip.Addr
}

func (r Remote) String() string {
	s := r.Addr.String()
	if r.Key != nil {
		s += " key " + strings.TrimSuffix(r.Key.Name, ".")
	}
	return s
}

// ParseAddr reads "ADDR", "ADDR:PORT" or "[V6]:PORT", port 53 by default.
func ParseAddr(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return netip.AddrPortFrom(a, 53), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an address or address:port", s)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: %q is not an IP address", s, host)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: bad port", s)
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// dial connects to r over network ("tcp" or "udp") from r.Source.
func (r Remote) dial(ctx context.Context, network string) (net.Conn, error) {
	d := net.Dialer{}
	if r.Source.IsValid() {
		switch network {
		case "tcp":
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(r.Source, 0))
		case "udp":
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(r.Source, 0))
		}
	}
	return d.DialContext(ctx, network, r.Addr.String())
}
