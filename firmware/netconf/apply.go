package netconf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// reconcile is one Apply pass: it collects changes and errors.
type reconcile struct {
	m       *Manager
	changes []string
	errs    []error
	links   map[string]netlink.Link // managed links found, by name
}

func (r *reconcile) changed(format string, args ...any) {
	r.changes = append(r.changes, fmt.Sprintf(format, args...))
}

func (r *reconcile) fail(err error) { r.errs = append(r.errs, err) }

// wantAddr is an address the config (or a DHCP lease) puts on a link.
type wantAddr struct {
	p netip.Prefix
	// lifetime is 0 for a permanent address; a lease's address expires
	// with the lease, so that the kernel drops it if the node is gone.
	lifetime time.Duration
}

func (r *reconcile) run() {
	m := r.m
	r.links = map[string]netlink.Link{}
	// Router advertisements are refused (or accepted) before a link
	// comes up, and secondaries are promoted before any address goes.
	for _, s := range m.desiredSysctls() {
		if ok, err := applySysctl(m.root, s); err != nil {
			r.fail(err)
		} else if ok {
			r.changed("sysctl %s = %s", s.path, s.value)
		}
	}
	lease := m.currentLease()
	r.loopback()
	for _, l := range m.cfg.Links {
		want := make([]wantAddr, 0, len(l.Addrs)+1)
		for _, a := range l.Addrs {
			want = append(want, wantAddr{p: a})
		}
		if l.DHCP4 && lease != nil {
			want = append(want, wantAddr{p: lease.Addr, lifetime: time.Until(lease.Expires)})
		}
		r.link(l, want)
	}
	r.routes(lease)
}

// loopback brings lo up and makes its addresses the anycast set plus the
// loopback addresses.
func (r *reconcile) loopback() {
	lo, err := r.m.h.LinkByName("lo")
	if err != nil {
		r.fail(fmt.Errorf("lo: %w", err))
		return
	}
	r.up(lo)
	all := r.m.anycast()
	want := make([]wantAddr, 0, len(all))
	for _, a := range all {
		want = append(want, wantAddr{p: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())})
	}
	r.addrs(lo, want, func(p netip.Prefix, _ netlink.Addr) bool { return p.Addr().IsLoopback() })
}

func (r *reconcile) up(l netlink.Link) {
	if l.Attrs().Flags&net.FlagUp != 0 {
		return
	}
	if err := r.m.h.LinkSetUp(l); err != nil {
		r.fail(fmt.Errorf("%s: setting up: %w", l.Attrs().Name, err))
		return
	}
	r.changed("link %s up", l.Attrs().Name)
}

func (r *reconcile) link(cfg Link, want []wantAddr) {
	l, err := r.m.h.LinkByName(cfg.Name)
	if err != nil {
		r.fail(fmt.Errorf("link %s: %w", cfg.Name, err))
		return
	}
	r.links[cfg.Name] = l
	if cfg.MTU != 0 && l.Attrs().MTU != cfg.MTU {
		if err := r.m.h.LinkSetMTU(l, cfg.MTU); err != nil {
			r.fail(fmt.Errorf("link %s: mtu %d: %w", cfg.Name, cfg.MTU, err))
		} else {
			r.changed("link %s mtu %d (was %d)", cfg.Name, cfg.MTU, l.Attrs().MTU)
		}
	}
	r.up(l)
	r.addrs(l, want, func(p netip.Prefix, a netlink.Addr) bool {
		if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			return true // the kernel's, and needed by IPv6 itself
		}
		// With router advertisements accepted, the kernel's
		// autoconfigured addresses are not ours to remove.
		return cfg.AcceptRA && p.Addr().Is6() && a.Flags&unix.IFA_F_PERMANENT == 0
	})
}

// addrs adds the wanted addresses missing from l, then removes the ones
// present and not wanted, except those keep says are not ours. Adding
// first keeps the link reachable while it is renumbered.
func (r *reconcile) addrs(l netlink.Link, want []wantAddr, keep func(netip.Prefix, netlink.Addr) bool) {
	name := l.Attrs().Name
	cur, err := r.m.h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		r.fail(fmt.Errorf("%s: listing addresses: %w", name, err))
		return
	}
	have := map[netip.Prefix]bool{}
	for _, a := range cur {
		if p, ok := addrPrefix(a); ok {
			have[p] = true
		}
	}
	wanted := map[netip.Prefix]bool{}
	for _, w := range want {
		wanted[w.p] = true
		if have[w.p] {
			continue
		}
		a := &netlink.Addr{IPNet: prefixNet(w.p)}
		if w.lifetime > 0 {
			secs := int(w.lifetime / time.Second)
			a.ValidLft, a.PreferedLft = max(secs, 1), max(secs, 1)
		}
		if err := r.m.h.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
			r.fail(fmt.Errorf("%s: adding %v: %w", name, w.p, err))
			continue
		}
		r.changed("address %v added to %s", w.p, name)
	}
	for _, a := range cur {
		p, ok := addrPrefix(a)
		if ok && wanted[p] && a.Flags&unix.IFA_F_DADFAILED != 0 {
			// The kernel keeps the address but will not use it.
			r.fail(fmt.Errorf("%s: %v: duplicate address detected on the link", name, p))
		}
		if !ok || wanted[p] || keep(p, a) {
			continue
		}
		if err := r.m.h.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			r.fail(fmt.Errorf("%s: removing %v: %w", name, p, err))
			continue
		}
		r.changed("address %v removed from %s", p, name)
	}
}

// addrPrefix is the address with its prefix length, host bits kept.
func addrPrefix(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// routeKey identifies a route for comparison: what the kernel shows back.
type routeKey struct {
	dst    netip.Prefix
	via    netip.Addr
	link   int // 0: any
	metric int
}

// describe renders a kernel route the way `ip route` would.
func (r *reconcile) describe(k routeKey) string {
	s := k.dst.String()
	if k.via.IsValid() {
		s += " via " + k.via.String()
	}
	if k.link != 0 {
		name := fmt.Sprintf("ifindex %d", k.link)
		if l, err := r.m.h.LinkByIndex(k.link); err == nil {
			name = l.Attrs().Name
		}
		s += " dev " + name
	}
	if k.metric != 0 {
		s += fmt.Sprintf(" metric %d", k.metric)
	}
	return s
}

func (k routeKey) matches(cur routeKey) bool {
	return k.dst == cur.dst && k.via == cur.via && k.metric == cur.metric && (k.link == 0 || k.link == cur.link)
}

// routes makes the routes tagged RouteProtocol in the main table exactly
// the configured ones plus the lease's default route.
func (r *reconcile) routes(lease *Lease) {
	type want struct {
		key   routeKey
		route Route
	}
	var wants []want
	add := func(rt Route) {
		k := routeKey{dst: rt.Dst.Masked(), via: rt.Via, metric: rt.Metric}
		if k.dst.Addr().Is6() && k.metric == 0 {
			k.metric = 1024 // the kernel's default for IPv6
		}
		if rt.Link != "" {
			l, ok := r.links[rt.Link]
			if !ok {
				r.fail(fmt.Errorf("route %v: link %s missing", rt, rt.Link))
				return
			}
			k.link = l.Attrs().Index
		}
		wants = append(wants, want{k, rt})
	}
	for _, rt := range r.m.cfg.Routes {
		add(rt)
	}
	if lease != nil && lease.Router.IsValid() {
		add(Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: lease.Router, Link: lease.Link, Metric: DHCPRouteMetric})
	}

	cur, err := r.m.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		r.fail(fmt.Errorf("listing routes: %w", err))
		return
	}
	curKeys := make([]routeKey, len(cur))
	for i, c := range cur {
		curKeys[i] = kernelRouteKey(c)
	}
	for _, w := range wants {
		if slices.ContainsFunc(curKeys, w.key.matches) {
			continue
		}
		nr := &netlink.Route{
			Dst:       prefixNet(w.key.dst),
			Protocol:  RouteProtocol,
			Priority:  w.key.metric,
			LinkIndex: w.key.link,
			Table:     unix.RT_TABLE_MAIN,
		}
		if w.key.via.IsValid() {
			nr.Gw = w.key.via.AsSlice()
		}
		if !w.key.via.IsValid() {
			nr.Scope = netlink.SCOPE_LINK
		}
		// Replace, not add: the config wins over a route the kernel or
		// someone else put in the same slot.
		if err := r.m.h.RouteReplace(nr); err != nil {
			r.fail(fmt.Errorf("route %v: %w", w.route, err))
			continue
		}
		r.changed("route %v added", w.route)
	}
	for i, c := range cur {
		if slices.ContainsFunc(wants, func(w want) bool { return w.key.matches(curKeys[i]) }) {
			continue
		}
		if err := r.m.h.RouteDel(&c); err != nil && !errors.Is(err, unix.ESRCH) {
			r.fail(fmt.Errorf("removing route %s: %w", r.describe(curKeys[i]), err))
			continue
		}
		r.changed("route %s removed", r.describe(curKeys[i]))
	}
}

func kernelRouteKey(c netlink.Route) routeKey {
	var k routeKey
	if c.Dst != nil {
		if ip, ok := netip.AddrFromSlice(c.Dst.IP); ok {
			ones, _ := c.Dst.Mask.Size()
			k.dst = netip.PrefixFrom(ip.Unmap(), ones)
		}
	} else if c.Family == netlink.FAMILY_V6 {
		k.dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	} else {
		k.dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	if ip, ok := netip.AddrFromSlice(c.Gw); ok {
		k.via = ip.Unmap()
	}
	k.link = c.LinkIndex
	k.metric = c.Priority
	return k
}

// linkSysctl is a per-link setting's path.
func linkSysctl(family, link, key string) string {
	return filepath.Join("net", family, "conf", link, key)
}
