package lab

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNS runs f on an OS thread switched into namespace ns. Sockets f opens
// stay in ns after the thread switches back, so the lab's own process can
// be a client in the client namespace without moving into it. If the
// thread cannot switch back it stays locked, and the runtime discards it
// when this goroutine ends.
func inNS(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("namespace %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			done <- fmt.Errorf("leaving namespace %s: %w", ns, err)
			return // thread stays locked and dies with the goroutine
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

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
