package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Network is the box's networking, applied through netlink: links up with
// their MTU, static addresses and routes, DHCPv4 on a management link, the
// anycast service addresses on lo, and sysctls. An empty section leaves the
// network alone (dev mode, a VM whose distribution manages it). Links that
// are not listed are never touched. README.md beside this file documents
// every option with its default.
type Network struct {
	Links []Link `yaml:"links,omitempty"`
	// Routes are static routes beyond the links' gateways.
	Routes []StaticRoute `yaml:"routes,omitempty"`
	// Anycast are the service addresses, put on lo as /32 and /128.
	Anycast []IPAddr `yaml:"anycast,omitempty"`
	// NonlocalBind sets net.ipv4.ip_nonlocal_bind and
	// net.ipv6.ip_nonlocal_bind so that DNS can bind a service address
	// that is (momentarily) not on the box. Default: true when Anycast is
	// set.
	NonlocalBind *bool `yaml:"nonlocal_bind,omitempty"`
	// Sysctls are extra kernel settings, "net.core.rmem_max": "4194304".
	Sysctls map[string]string `yaml:"sysctls,omitempty"`
	// Reconcile is how often the whole section is re-applied, undoing
	// changes made behind the node's back (default 30s).
	Reconcile Duration `yaml:"reconcile,omitempty"`
}

// Link is one network interface the node manages.
type Link struct {
	Name string `yaml:"name"`
	// MTU, if set, is applied to the link (0: leave as is).
	MTU       int        `yaml:"mtu,omitempty"`
	Addresses []IPPrefix `yaml:"addresses,omitempty"`
	// Gateway4 and Gateway6 add a default route of their family via this
	// link.
	Gateway4 IPAddr `yaml:"gateway4,omitempty"`
	Gateway6 IPAddr `yaml:"gateway6,omitempty"`
	// AcceptRA lets the kernel take IPv6 router advertisements (addresses
	// and a default route) on this link. Off by default: at an IXP a stray
	// RA must not move the node's traffic.
	AcceptRA bool `yaml:"accept_ra,omitempty"`
	// DHCP4 gets an IPv4 address and default route by DHCP (a management
	// link).
	DHCP4 bool `yaml:"dhcp4,omitempty"`
}

// StaticRoute is one route in the main table.
type StaticRoute struct {
	To  IPPrefix `yaml:"to"`
	Via IPAddr   `yaml:"via,omitempty"`
	// Link is the outgoing interface; required without Via.
	Link   string `yaml:"link,omitempty"`
	Metric int    `yaml:"metric,omitempty"`
}

// DefaultReconcile is how often the network section is re-applied.
const DefaultReconcile = Duration(30 * time.Second)

// Enabled reports whether the node manages networking at all.
func (s *Network) Enabled() bool {
	return len(s.Links) > 0 || len(s.Routes) > 0 || len(s.Anycast) > 0 || len(s.Sysctls) > 0
}

var (
	linkName   = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,15}$`)
	sysctlName = regexp.MustCompile(`^[a-z0-9_]+(\.[A-Za-z0-9_@:-]+)+$`)
)

func (s *Network) check(c *Config, line func(string) int) []string {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("line %d: network: %s", line(key), fmt.Sprintf(format, args...)))
	}
	links := map[string]bool{}
	dhcp := 0
	gw4, gw6 := 0, 0
	addrs := map[string]string{}
	for _, l := range s.Links {
		if !linkName.MatchString(l.Name) {
			bad(l.Name, "link name %q is not an interface name", l.Name)
			continue
		}
		if l.Name == "lo" {
			bad(l.Name, "link lo is managed through network.anycast")
		}
		if links[l.Name] {
			bad(last(l.Name), "link %s listed twice", l.Name)
		}
		links[l.Name] = true
		if l.MTU != 0 && (l.MTU < 576 || l.MTU > 65535) {
			bad("mtu", "link %s: mtu %d: must be 576..65535", l.Name, l.MTU)
		}
		if l.DHCP4 {
			dhcp++
			if l.Gateway4.IsValid() {
				bad("gateway4", "link %s: gateway4 and dhcp4 both set; DHCP brings the gateway", l.Name)
			}
		}
		for _, a := range l.Addresses {
			if a.Default {
				bad("default", "link %s: \"default\" is not an address", l.Name)
				continue
			}
			if a.Addr().IsLinkLocalUnicast() || a.Addr().IsMulticast() || a.Addr().IsUnspecified() {
				bad(a.String(), "link %s: %s is not a usable interface address", l.Name, a)
			}
			if other, dup := addrs[a.Addr().String()]; dup {
				bad(a.String(), "address %s on both %s and %s", a.Addr(), other, l.Name)
			}
			addrs[a.Addr().String()] = l.Name
		}
		if g := l.Gateway4; g.IsValid() {
			gw4++
			if !g.Is4() {
				bad(g.String(), "link %s: gateway4 %s is not IPv4", l.Name, g)
			}
		}
		if g := l.Gateway6; g.IsValid() {
			gw6++
			if !g.Is6() {
				bad(g.String(), "link %s: gateway6 %s is not IPv6", l.Name, g)
			}
		}
	}
	if dhcp > 1 {
		bad("dhcp4", "dhcp4 on %d links; one management link at most", dhcp)
	}
	if gw4 > 1 || gw6 > 1 {
		bad("gateway", "one gateway4 and one gateway6 at most (one default route per family)")
	}
	for _, r := range s.Routes {
		key := r.To.String()
		if r.To.Default {
			if !r.Via.IsValid() {
				bad("default", "route to default needs via")
				continue
			}
			if (r.Via.Is4() && gw4 > 0) || (r.Via.Is6() && gw6 > 0) {
				bad("default", "default route given both as a route and as a link gateway")
			}
		} else if r.To.Addr().IsValid() && r.To.Masked() != r.To.Prefix {
			bad(key, "route to %s: host bits set (did you mean %s?)", r.To, r.To.Masked())
		}
		if r.Via.IsValid() && !r.To.Default && r.Via.Is4() != r.To.Addr().Is4() {
			bad(key, "route to %s via %s: families differ", r.To, r.Via)
		}
		if !r.Via.IsValid() && r.Link == "" {
			bad(key, "route to %s: needs via or link", r.To)
		}
		if r.Link != "" && !links[r.Link] {
			bad(r.Link, "route to %s: link %s is not in network.links", r.To, r.Link)
		}
		if r.Metric < 0 {
			bad("metric", "route to %s: metric must not be negative", r.To)
		}
	}
	seen := map[IPAddr]bool{}
	for _, a := range s.Anycast {
		if a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() {
			bad(a.String(), "anycast %s is not a service address", a)
		}
		if seen[a] {
			bad(last(a.String()), "anycast %s listed twice", a)
		}
		seen[a] = true
	}
	for k := range s.Sysctls {
		if !sysctlName.MatchString(k) || strings.Contains(k, "..") {
			bad(k, "sysctl %q is not a name like net.core.rmem_max", k)
		}
	}
	return errs
}

func (s *Network) setDefaults(c *Config) {
	if s.NonlocalBind == nil && len(s.Anycast) > 0 {
		on := true
		s.NonlocalBind = &on
	}
	if s.Reconcile == 0 {
		s.Reconcile = DefaultReconcile
	}
}
