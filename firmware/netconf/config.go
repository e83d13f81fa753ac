package netconf

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

// RouteProtocol is the routing protocol number (rtm_protocol) on every
// route this package installs; routes with any other number are not ours
// and are left alone. 53 is unassigned in iproute2's rt_protos, and is
// shown as "proto 53" by `ip route`.
const RouteProtocol = 53

// DHCPRouteMetric is the metric of the default route a DHCP lease brings,
// so that a static default route (metric 0) on the service link wins.
const DHCPRouteMetric = 1024

// DefaultReconcile is how often Run re-applies the config (the config
// document's default).
const DefaultReconcile = time.Duration(config.DefaultReconcile)

// Config is the desired networking.
type Config struct {
	Links  []Link
	Routes []Route
	// Anycast addresses go on lo as host routes (/32, /128).
	Anycast []netip.Addr
	// NonlocalBind sets net.ipv4.ip_nonlocal_bind and
	// net.ipv6.ip_nonlocal_bind.
	NonlocalBind bool
	// Sysctls are extra settings by dotted name ("net.core.rmem_max").
	Sysctls map[string]string
	// Reconcile is how often Run re-applies (default DefaultReconcile).
	Reconcile time.Duration
}

// Link is one managed interface.
type Link struct {
	Name string
	// MTU is applied when non-zero.
	MTU int
	// Addrs keep their host bits: 192.0.2.10/24.
	Addrs []netip.Prefix
	// Gateway4 and Gateway6 each add a default route via this link.
	Gateway4, Gateway6 netip.Addr
	// AcceptRA enables IPv6 router advertisements and autoconfiguration
	// on the link; otherwise both are switched off.
	AcceptRA bool
	// DHCP4 runs the DHCPv4 client on the link.
	DHCP4 bool
}

// Route is one static route in the main table. Dst 0.0.0.0/0 or ::/0 is
// a default route.
type Route struct {
	Dst    netip.Prefix
	Via    netip.Addr
	Link   string // outgoing link; required without Via
	Metric int
}

func (r Route) String() string {
	s := r.Dst.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Link != "" {
		s += " dev " + r.Link
	}
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	return s
}

// normalize checks cfg and fills in defaults; it returns the routes the
// links' gateways imply added to the static ones.
func (cfg Config) normalize() (Config, error) {
	out := cfg
	if out.Reconcile <= 0 {
		out.Reconcile = DefaultReconcile
	}
	seen := map[string]bool{}
	dhcp := 0
	out.Routes = append([]Route(nil), cfg.Routes...)
	for i, l := range cfg.Links {
		if l.Name == "" || l.Name == "lo" {
			return cfg, fmt.Errorf("netconf: link %d: bad name %q", i, l.Name)
		}
		if seen[l.Name] {
			return cfg, fmt.Errorf("netconf: link %s listed twice", l.Name)
		}
		seen[l.Name] = true
		if l.DHCP4 {
			dhcp++
		}
		for _, a := range l.Addrs {
			if !a.IsValid() {
				return cfg, fmt.Errorf("netconf: link %s: invalid address", l.Name)
			}
		}
		if l.Gateway4.IsValid() {
			out.Routes = append(out.Routes, Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: l.Gateway4.Unmap(), Link: l.Name})
		}
		if l.Gateway6.IsValid() {
			out.Routes = append(out.Routes, Route{Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Via: l.Gateway6, Link: l.Name})
		}
	}
	if dhcp > 1 {
		return cfg, fmt.Errorf("netconf: DHCP on %d links; one at most", dhcp)
	}
	for _, r := range out.Routes {
		if !r.Dst.IsValid() {
			return cfg, fmt.Errorf("netconf: route with invalid destination")
		}
		if r.Link != "" && !seen[r.Link] {
			return cfg, fmt.Errorf("netconf: route %v: link %s is not managed", r, r.Link)
		}
		if !r.Via.IsValid() && r.Link == "" {
			return cfg, fmt.Errorf("netconf: route %v: needs a gateway or a link", r)
		}
		if r.Via.IsValid() && r.Via.Is4() != r.Dst.Addr().Is4() {
			return cfg, fmt.Errorf("netconf: route %v: families differ", r)
		}
	}
	for _, a := range cfg.Anycast {
		if !a.IsValid() || a.IsLoopback() {
			return cfg, fmt.Errorf("netconf: bad anycast address %v", a)
		}
	}
	return out, nil
}
