package xfr

import (
	"context"
	"net"
	"net/netip"
	"strings"
)

// DialFunc connects to addr ("ADDR:PORT" or "NAME:PORT") over network
// ("tcp" or "udp"). The node passes the overlay's: tailnet addresses and
// names go through the tailnet (on a box tsnet is userspace networking,
// so the kernel cannot reach them), others directly.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DialFromFunc connects to addr ("ADDR:PORT") over network ("tcp" or
// "udp") from the local address source.
type DialFromFunc func(ctx context.Context, network string, source netip.Addr, addr string) (net.Conn, error)

// Remote is a server we talk to: a primary we transfer from or a
// downstream we notify.
type Remote struct {
	// Addr is the server's address and port, or the zero value when it
	// is named by Name.
	Addr netip.AddrPort
	// Name is "NAME:PORT" for a server named by its host (tailnet)
	// name; the name is resolved by Dial.
	Name string
	// Key signs what we send and must sign what comes back; nil for none.
	Key *Key
	// Source is the local address to send from; the zero value lets the
	// kernel choose. Primaries commonly allow transfers by source address.
	Source netip.Addr
	// Dial connects to the server; nil dials directly (net.Dialer). It is
	// not used when Source is set: binding a source address only makes
	// sense for a direct connection.
	Dial DialFunc
	// DialFrom connects to the server from Source when Source is set;
	// nil binds Source and dials directly. A tenant in a network
	// namespace of its own passes its host's dial broker, which binds
	// Source in the host's namespace, where the address is.
	DialFrom DialFromFunc
}

// Target is what is dialled: "ADDR:PORT" or "NAME:PORT".
func (r Remote) Target() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Addr.String()
}

func (r Remote) String() string {
	s := r.Target()
	if r.Key != nil {
		s += " key " + strings.TrimSuffix(r.Key.Name, ".")
	}
	return s
}

// dial connects to r over network ("tcp" or "udp"), through r.Dial, or
// from r.Source through r.DialFrom or directly.
func (r Remote) dial(ctx context.Context, network string) (net.Conn, error) {
	if r.DialFrom != nil && r.Source.IsValid() {
		return r.DialFrom(ctx, network, r.Source, r.Target())
	}
	if r.Dial != nil && !r.Source.IsValid() {
		return r.Dial(ctx, network, r.Target())
	}
	d := net.Dialer{}
	if r.Source.IsValid() {
		switch network {
		case "tcp":
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(r.Source, 0))
		case "udp":
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(r.Source, 0))
		}
	}
	return d.DialContext(ctx, network, r.Target())
}
