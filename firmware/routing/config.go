package routing

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/bfd"
	"github.com/shoestring-dns/shoestring/firmware/bgp"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/netconf"
)

// Translation of the config document's network, bgp and health sections
// into what netconf, bgp, bfd and health take.

func netconfConfig(nc config.Network) netconf.Config {
	cfg := netconf.Config{
		NonlocalBind: nc.NonlocalBind != nil && *nc.NonlocalBind,
		Sysctls:      nc.Sysctls,
		Reconcile:    time.Duration(nc.Reconcile),
	}
	for _, l := range nc.Links {
		nl := netconf.Link{Name: l.Name, MTU: l.MTU, Gateway4: l.Gateway4.Addr, Gateway6: l.Gateway6.Addr, AcceptRA: l.AcceptRA, DHCP4: l.DHCP4}
		for _, a := range l.Addresses {
			nl.Addrs = append(nl.Addrs, a.Prefix)
		}
		cfg.Links = append(cfg.Links, nl)
	}
	for _, r := range nc.Routes {
		dst := r.To.Prefix
		if r.To.Default {
			dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if r.Via.Is6() {
				dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
		}
		cfg.Routes = append(cfg.Routes, netconf.Route{Dst: dst, Via: r.Via.Addr, Link: r.Link, Metric: r.Metric})
	}
	for _, a := range nc.Anycast {
		cfg.Anycast = append(cfg.Anycast, a.Addr)
	}
	return cfg
}

func bgpConfig(c *config.Config) bgp.Config {
	bc := bgp.Config{LocalASN: c.BGP.ASN, RouterID: c.BGP.RouterID.Addr}
	for _, l := range c.BGP.Listen {
		bc.ListenAddrs = append(bc.ListenAddrs, string(l))
	}
	for _, p := range c.BGP.Peers {
		bc.Peers = append(bc.Peers, bgp.PeerConfig{
			Name: p.Name, Address: p.Address.Addr, Port: p.Port, RemoteASN: p.ASN,
			LocalAddress: p.LocalAddress.Addr, Passive: p.Passive, HoldTime: time.Duration(p.HoldTime),
			MD5Password: p.MD5Password, NextHop4: p.NextHop4.Addr, NextHop6: p.NextHop6.Addr,
			MaxPrefixes: p.MaxPrefixes, MaxPrefixRestart: time.Duration(p.MaxPrefixRestart),
		})
	}
	return bc
}

func announceRoute(a config.Announce) bgp.Route {
	r := bgp.Route{Prefix: a.Prefix.Masked(), Prepend: a.Prepend, MED: a.MED, LocalPref: a.LocalPref}
	for _, c := range a.Communities {
		r.Communities = append(r.Communities, bgp.Community(c.ASN, c.Value))
	}
	for _, lc := range a.LargeCommunities {
		r.LargeCommunities = append(r.LargeCommunities, bgp.LargeCommunity{ASN: lc.ASN, Data1: lc.Data1, Data2: lc.Data2})
	}
	return r
}

func bfdSessions(c *config.Config) []bfd.SessionConfig {
	var out []bfd.SessionConfig
	for _, p := range c.BGP.Peers {
		if !p.BFD.Enabled {
			continue
		}
		out = append(out, bfd.SessionConfig{
			Name: p.Name, Peer: p.Address.Addr, Local: p.LocalAddress.Addr, Interface: p.BFD.Interface,
			DesiredMinTx: time.Duration(p.BFD.MinTx), RequiredMinRx: time.Duration(p.BFD.MinRx), DetectMult: uint8(p.BFD.Multiplier),
		})
	}
	return out
}

// bfdListen listens only in the families that have sessions, so that a box
// without IPv6 does not fail to bind [::].
func bfdListen(sessions []bfd.SessionConfig) []string {
	var v4, v6 bool
	for _, s := range sessions {
		v4 = v4 || s.Peer.Is4()
		v6 = v6 || s.Peer.Is6()
	}
	var out []string
	if v4 {
		out = append(out, fmt.Sprintf("0.0.0.0:%d", bfd.ControlPort))
	}
	if v6 {
		out = append(out, fmt.Sprintf("[::]:%d", bfd.ControlPort))
	}
	return out
}

// healthConfig is the checks' configuration: liveness queries to every
// address the DNS server listens on, and for each announced prefix its
// service addresses and canary.
func healthConfig(c *config.Config, dnsAddrs []string, expired func() []string, drained []netip.Prefix) (health.Config, error) {
	h := c.Health
	hc := health.Config{
		Interval: time.Duration(h.Interval), Timeout: time.Duration(h.Timeout),
		Rise: h.Rise, Fall: h.Fall,
		DrainWait: time.Duration(h.Drain.Wait), Linger: time.Duration(h.Drain.Linger),
		NSID:    c.DNS.NSID,
		Expired: expired,
		Drained: drained,
	}
	for _, a := range dnsAddrs {
		if ap, err := netip.ParseAddrPort(a); err == nil {
			hc.Liveness = append(hc.Liveness, localTarget(ap))
		}
	}
	for _, a := range c.BGP.Prefixes {
		p := health.Prefix{Route: announceRoute(a)}
		for _, addr := range c.HealthAddresses(a.Prefix) {
			port, ok := c.DNSPort(addr)
			if !ok {
				return hc, fmt.Errorf("health: prefix %v: dns does not listen on %v", a.Prefix, addr)
			}
			p.Targets = append(p.Targets, netip.AddrPortFrom(addr.Addr, uint16(port)))
		}
		if cn := c.HealthCanary(a.Prefix); cn.Name != "" {
			p.Query = health.Query{Name: dns.Fqdn(cn.Name), Type: dns.StringToType[strings.ToUpper(cn.Type)], Class: dns.ClassINET}
		}
		hc.Prefixes = append(hc.Prefixes, p)
	}
	return hc, nil
}

// localTarget turns a wildcard listen address into the loopback address
// of its family, which the wildcard socket answers on.
func localTarget(ap netip.AddrPort) netip.AddrPort {
	if !ap.Addr().IsUnspecified() {
		return ap
	}
	if ap.Addr().Is4() {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port())
	}
	return netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())
}
