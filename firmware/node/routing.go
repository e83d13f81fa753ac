package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/bfd"
	"github.com/shoestring-dns/shoestring/firmware/bgp"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/netconf"
)

// Routing: networking through netlink, the BGP speaker, BFD, the health
// checks that decide what the speaker announces, and the drain before a
// planned stop. Health decides, the speaker obeys: nothing else calls
// SetRoutes.

// routing is the node's routing state; parts that are not configured stay
// nil.
type routing struct {
	net     *netconf.Manager
	speaker *bgp.Speaker
	bfd     *bfd.Server
	health  *health.Monitor
}

// Where an operator's drain is kept, so that a drained node that reboots
// does not come back announcing.
const (
	metaRouting = "routing"
	metaDrained = "drained"
)

// startNetwork applies the network section before the DNS server binds its
// service addresses, then keeps it applied. A part that cannot be applied
// (a missing link, say) is logged and retried; it does not stop the node
// from serving on the rest.
func (n *Node) startNetwork(ctx context.Context) error {
	nc := n.cfg.Network
	if !nc.Enabled() {
		return nil
	}
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
	m, err := netconf.New(cfg, n.log.With("part", "network"))
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	start := time.Now()
	changes, err := m.Apply()
	n.log.Info("network applied", "changes", len(changes), "took", time.Since(start).Round(time.Microsecond))
	for _, c := range changes {
		n.log.Debug("network change", "change", c)
	}
	if err != nil {
		n.log.Error("network config not fully applied; retrying in the background", "err", err)
	}
	n.rt.net = m
	go func() {
		m.Run(ctx)
		m.Close()
	}()
	return nil
}

// startRouting starts BGP, BFD and the health checks. The checks run even
// without BGP: they are what Healthy (and so the hardware watchdog) goes
// by.
func (n *Node) startRouting(ctx context.Context) error {
	var out health.Announcer = noAnnouncer{}
	if n.cfg.BGP.Enabled() {
		sp, err := bgp.New(bgpConfig(n.cfg), n.log.With("part", "bgp"))
		if err != nil {
			return err
		}
		n.rt.speaker = sp
		out = sp
		if sessions := bfdSessions(n.cfg); len(sessions) > 0 {
			b, err := bfd.New(bfd.Config{ListenAddrs: bfdListen(sessions), Sessions: sessions, OnChange: n.bfdChanged}, n.log.With("part", "bfd"))
			if err != nil {
				return err
			}
			n.rt.bfd = b
		}
	}
	hc, err := n.healthConfig()
	if err != nil {
		return err
	}
	mon, err := health.New(hc, out, n.log.With("part", "health"))
	if err != nil {
		return err
	}
	n.rt.health = mon
	go mon.Run(ctx)
	if sp := n.rt.speaker; sp != nil {
		go func() {
			// Sessions start once the link addresses are usable
			// (IPv6 duplicate address detection takes a second);
			// a dial from a tentative address would hang until its
			// timeout and back off.
			if n.rt.net != nil && !n.rt.net.Settle(ctx, 5*time.Second) {
				n.log.Warn("network: addresses still tentative after 5s; starting BGP anyway")
			}
			if err := sp.Run(ctx); err != nil {
				n.log.Error("bgp speaker stopped", "err", err)
			}
		}()
	}
	if b := n.rt.bfd; b != nil {
		go func() {
			if err := b.Run(ctx); err != nil {
				n.log.Error("bfd stopped", "err", err)
			}
		}()
	}
	return nil
}

// noAnnouncer is the health monitor's output on a node without BGP.
type noAnnouncer struct{}

func (noAnnouncer) SetRoutes([]bgp.Route) error { return nil }

// bfdChanged takes a BGP session down when its BFD session fails (RFC
// 5882): the neighbour sees the same failure and drops our routes within
// the detection time, and so do we instead of waiting out the hold time.
// A neighbour that goes AdminDown is not a failure (RFC 5882 §3.2).
func (n *Node) bfdChanged(ev bfd.Event) {
	if ev.From != bfd.Up || ev.To == bfd.Up || ev.Remote == bfd.AdminDown || n.rt.speaker == nil {
		return
	}
	reason := fmt.Sprintf("BFD down: %s", ev.Diag)
	go func() {
		if err := n.rt.speaker.DropSession(ev.Name, reason); err != nil {
			n.log.Error("bfd: dropping session", "peer", ev.Name, "err", err)
		}
	}()
}

// drain runs before any planned stop, while DNS still answers: announced
// prefixes get GRACEFUL_SHUTDOWN, then are withdrawn, and the node goes on
// answering for the linger time.
func (n *Node) drain() {
	if n.rt.health == nil {
		return
	}
	start := time.Now()
	n.rt.health.Stop(context.Background())
	n.log.Info("drained", "took", time.Since(start).Round(time.Millisecond))
}

// routingHealthy is Healthy's verdict once the node is up: whether the
// DNS server answers its own checks at all.
func (n *Node) routingHealthy() (bool, string) {
	if n.rt.health == nil {
		return true, "ok"
	}
	return n.rt.health.Alive()
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

func (n *Node) healthConfig() (health.Config, error) {
	h := n.cfg.Health
	hc := health.Config{
		Interval: time.Duration(h.Interval), Timeout: time.Duration(h.Timeout),
		Rise: h.Rise, Fall: h.Fall,
		DrainWait: time.Duration(h.Drain.Wait), Linger: time.Duration(h.Drain.Linger),
		NSID:    n.cfg.DNS.NSID,
		Expired: n.expiredZones,
		Drained: n.loadDrained(),
	}
	for _, a := range n.dns.Addrs() {
		if ap, err := netip.ParseAddrPort(a); err == nil {
			hc.Liveness = append(hc.Liveness, localTarget(ap))
		}
	}
	for _, a := range n.cfg.BGP.Prefixes {
		p := health.Prefix{Route: announceRoute(a)}
		for _, addr := range n.cfg.HealthAddresses(a.Prefix) {
			port, ok := n.cfg.DNSPort(addr)
			if !ok {
				return hc, fmt.Errorf("health: prefix %v: dns does not listen on %v", a.Prefix, addr)
			}
			p.Targets = append(p.Targets, netip.AddrPortFrom(addr.Addr, uint16(port)))
		}
		if cn := n.cfg.HealthCanary(a.Prefix); cn.Name != "" {
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

// expiredZones lists the served zones past their SOA expire.
func (n *Node) expiredZones() []string { return n.dns.ExpiredZones() }

func (n *Node) loadDrained() []netip.Prefix {
	b, err := n.store.GetMeta(metaRouting, metaDrained)
	if err != nil {
		return nil
	}
	var ps []netip.Prefix
	if err := json.Unmarshal(b, &ps); err != nil {
		n.log.Warn("stored maintenance state unreadable; ignored", "err", err)
		return nil
	}
	if len(ps) > 0 {
		n.log.Warn("prefixes stay drained from before the restart; `shoestring ctl restore` announces them", "prefixes", ps)
	}
	return ps
}

func (n *Node) saveDrained() {
	b, _ := json.Marshal(n.rt.health.Maintained())
	if err := n.store.PutMeta(metaRouting, metaDrained, b); err != nil {
		n.log.Error("saving maintenance state", "err", err)
	}
}

// routingRoutes adds the routing endpoints to the management API.
func (n *Node) routingRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/routing", func(w http.ResponseWriter, r *http.Request) {
		rt := api.Routing{Sessions: n.sessions(), BFD: n.bfdStatus(), Prefixes: n.prefixes()}
		if n.rt.net != nil {
			nw := n.network()
			rt.Network = &nw
		}
		writeRoutingJSON(w, http.StatusOK, rt)
	})
	mux.HandleFunc("GET /api/v1/routing/sessions", func(w http.ResponseWriter, r *http.Request) {
		writeRoutingJSON(w, http.StatusOK, n.sessions())
	})
	mux.HandleFunc("GET /api/v1/routing/prefixes", func(w http.ResponseWriter, r *http.Request) {
		writeRoutingJSON(w, http.StatusOK, n.prefixes())
	})
	mux.HandleFunc("GET /api/v1/routing/network", func(w http.ResponseWriter, r *http.Request) {
		if n.rt.net == nil {
			writeRoutingJSON(w, http.StatusNotFound, api.Error{Error: "the network section is empty: the node does not manage networking"})
			return
		}
		writeRoutingJSON(w, http.StatusOK, n.network())
	})
	maint := func(op func(netip.Prefix) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req api.Maintenance
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
			if err == nil && len(bytes.TrimSpace(body)) > 0 {
				err = json.Unmarshal(body, &req)
			}
			if err != nil {
				writeRoutingJSON(w, http.StatusBadRequest, api.Error{Error: "body: " + err.Error()})
				return
			}
			var pfx netip.Prefix
			if req.Prefix != "" && req.Prefix != "all" {
				p, err := parsePrefixOrAddr(req.Prefix)
				if err != nil {
					writeRoutingJSON(w, http.StatusBadRequest, api.Error{Error: err.Error()})
					return
				}
				pfx = p
			}
			if err := op(pfx); err != nil {
				code := http.StatusInternalServerError
				if errors.Is(err, health.ErrUnknownPrefix) {
					code = http.StatusNotFound
				}
				writeRoutingJSON(w, code, api.Error{Error: err.Error()})
				return
			}
			n.saveDrained()
			writeRoutingJSON(w, http.StatusOK, n.prefixes())
		}
	}
	mux.HandleFunc("POST /api/v1/routing/drain", maint(func(p netip.Prefix) error { return n.rt.health.Drain(p) }))
	mux.HandleFunc("POST /api/v1/routing/restore", maint(func(p netip.Prefix) error { return n.rt.health.Restore(p) }))
}

// parsePrefixOrAddr accepts 192.0.2.53/32 or 192.0.2.53.
func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func writeRoutingJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (n *Node) sessions() []api.BGPSession {
	out := []api.BGPSession{}
	if n.rt.speaker == nil {
		return out
	}
	bfdState := map[string]string{}
	if n.rt.bfd != nil {
		for _, s := range n.rt.bfd.Status() {
			bfdState[s.Name] = s.State.String()
		}
	}
	for _, s := range n.rt.speaker.Status() {
		bs := api.BGPSession{
			Name: s.Name, Address: s.Address.String(), RemoteASN: s.RemoteASN, IBGP: s.IBGP,
			State: s.State, Since: s.Since, LastError: s.LastError, LastErrorAt: s.LastErrorAt,
			Families: s.Families, PrefixesSent: s.PrefixesSent, RoutesReceived: s.RoutesReceived,
			BFD: bfdState[s.Name],
		}
		if s.State == bgp.StateEstablished {
			bs.Uptime = time.Since(s.Since).Round(time.Second).String()
		}
		out = append(out, bs)
	}
	return out
}

func (n *Node) bfdStatus() []api.BFDSession {
	if n.rt.bfd == nil {
		return nil
	}
	var out []api.BFDSession
	for _, s := range n.rt.bfd.Status() {
		out = append(out, api.BFDSession{
			Name: s.Name, Peer: s.Peer.String(), State: s.State.String(), Since: s.Since,
			Diag: s.Diag.String(), RemoteState: s.RemoteState.String(),
			TxInterval: s.TxInterval.String(), DetectionTime: s.DetectionTime.String(),
		})
	}
	return out
}

func (n *Node) prefixes() []api.Prefix {
	out := []api.Prefix{}
	if n.rt.health == nil {
		return out
	}
	attrs := map[netip.Prefix]config.Announce{}
	for _, a := range n.cfg.BGP.Prefixes {
		attrs[a.Prefix.Masked()] = a
	}
	for _, s := range n.rt.health.Status() {
		p := api.Prefix{
			Prefix: s.Prefix.String(), State: s.State, Reason: s.Reason, Since: s.Since,
			Healthy: s.Healthy, Passes: s.Passes, Fails: s.Fails, Query: s.Query,
			LastError: s.LastError, LastErrorAt: s.LastErrorAt, Maintenance: s.Maintenance,
		}
		for _, t := range s.Targets {
			p.Targets = append(p.Targets, t.String())
		}
		if a, ok := attrs[s.Prefix]; ok {
			for _, c := range a.Communities {
				p.Communities = append(p.Communities, c.String())
			}
			for _, c := range a.LargeCommunities {
				p.LargeCommunities = append(p.LargeCommunities, c.String())
			}
			p.Prepend, p.MED, p.LocalPref = a.Prepend, a.MED, a.LocalPref
		}
		out = append(out, p)
	}
	return out
}

func (n *Node) network() api.Network {
	st := n.rt.net.Status()
	nw := api.Network{LastApply: st.LastApply, LastError: st.LastError, Changes: st.Changes, ChangedAt: st.ChangedAt, DHCPError: st.DHCPError}
	for _, l := range st.Links {
		al := api.Link{Name: l.Name, Up: l.Up, MTU: l.MTU, Error: l.Error, Addresses: []string{}}
		for _, a := range l.Addrs {
			al.Addresses = append(al.Addresses, a.String())
		}
		nw.Links = append(nw.Links, al)
	}
	if l := st.Lease; l != nil {
		nw.Lease = &api.DHCPLease{Link: l.Link, Address: l.Addr.String(), Server: l.Server.String(),
			Obtained: l.Obtained, Renew: l.Renew, Expires: l.Expires}
		if l.Router.IsValid() {
			nw.Lease.Router = l.Router.String()
		}
	}
	return nw
}
