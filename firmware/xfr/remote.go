package xfr

import (
	"context"
	"net"
	"net/netip"
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
