package lab

import (
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// routeWatcher reads the router's kernel routes through a netlink socket
// opened in its namespace: cheap enough to poll every few milliseconds
// when timing a failover.
type routeWatcher struct {
	h *netlink.Handle
}

func newRouteWatcher(ns string) (*routeWatcher, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, err
	}
	return &routeWatcher{h: nh}, nil
}

func (w *routeWatcher) close() { w.h.Close() }

// nexthops returns the gateways of the router's route to p, sorted; none
// when there is no route.
func (w *routeWatcher) nexthops(p netip.Prefix) ([]netip.Addr, error) {
	fam := netlink.FAMILY_V4
	if p.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	rs, err := w.h.RouteListFiltered(fam, &netlink.Route{Dst: prefixNet(p)}, netlink.RT_FILTER_DST)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, r := range rs {
		if r.Gw != nil {
			if a, ok := netip.AddrFromSlice(r.Gw); ok {
				out = append(out, a.Unmap())
			}
		}
		for _, nh := range r.MultiPath {
			if a, ok := netip.AddrFromSlice(nh.Gw); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out), nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
