package api

import (
	"time"

	"github.com/shoestring-dns/shoestring/firmware/bfd"
	"github.com/shoestring-dns/shoestring/firmware/bgp"
	"github.com/shoestring-dns/shoestring/firmware/dnstap"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/logring"
	"github.com/shoestring-dns/shoestring/firmware/netconf"
	overlaystatus "github.com/shoestring-dns/shoestring/firmware/overlay/status"
	"github.com/shoestring-dns/shoestring/firmware/routing"
)

// Subsystems keep their own status types and know nothing of the API;
// they are turned into the API's JSON shapes here, and only here.

// NewRouting is routing's whole state as GET /api/v1/routing shows it.
func NewRouting(b RoutingBackend) Routing {
	rt := Routing{Sessions: NewSessions(b.Sessions(), b.BFD()), BFD: NewBFD(b.BFD()), Prefixes: NewPrefixes(b.Prefixes())}
	if st, ok := b.Network(); ok {
		nw := NewNetwork(st)
		rt.Network = &nw
	}
	return rt
}

// NewSessions shows BGP sessions, each with its BFD session's state.
func NewSessions(peers []bgp.PeerStatus, bfds []bfd.SessionStatus) []BGPSession {
	out := []BGPSession{}
	bfdState := map[string]string{}
	for _, s := range bfds {
		bfdState[s.Name] = s.State.String()
	}
	for _, s := range peers {
		bs := BGPSession{
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

// NewBFD shows BFD sessions; nil when there are none.
func NewBFD(ss []bfd.SessionStatus) []BFDSession {
	var out []BFDSession
	for _, s := range ss {
		out = append(out, BFDSession{
			Name: s.Name, Peer: s.Peer.String(), State: s.State.String(), Since: s.Since,
			Diag: s.Diag.String(), RemoteState: s.RemoteState.String(),
			TxInterval: s.TxInterval.String(), DetectionTime: s.DetectionTime.String(),
		})
	}
	return out
}

// NewPrefixes shows the configured prefixes, their health and attributes.
func NewPrefixes(ps []routing.Prefix) []Prefix {
	out := []Prefix{}
	for _, s := range ps {
		p := Prefix{
			Prefix: s.Prefix.String(), State: s.State, Reason: s.Reason, Since: s.Since,
			Healthy: s.Healthy, Passes: s.Passes, Fails: s.Fails, Query: s.Query,
			LastError: s.LastError, LastErrorAt: s.LastErrorAt, Maintenance: s.Maintenance,
		}
		for _, t := range s.Targets {
			p.Targets = append(p.Targets, t.String())
		}
		a := s.Announce
		for _, c := range a.Communities {
			p.Communities = append(p.Communities, c.String())
		}
		for _, c := range a.LargeCommunities {
			p.LargeCommunities = append(p.LargeCommunities, c.String())
		}
		p.Prepend, p.MED, p.LocalPref = a.Prepend, a.MED, a.LocalPref
		out = append(out, p)
	}
	return out
}

// NewNetwork shows the networking's state.
func NewNetwork(st netconf.Status) Network {
	nw := Network{LastApply: st.LastApply, LastError: st.LastError, Changes: st.Changes, ChangedAt: st.ChangedAt, DHCPError: st.DHCPError}
	for _, l := range st.Links {
		al := Link{Name: l.Name, Up: l.Up, MTU: l.MTU, Error: l.Error, Addresses: []string{}}
		for _, a := range l.Addrs {
			al.Addresses = append(al.Addresses, a.String())
		}
		nw.Links = append(nw.Links, al)
	}
	if l := st.Lease; l != nil {
		nw.Lease = &DHCPLease{Link: l.Link, Address: l.Addr.String(), Server: l.Server.String(),
			Obtained: l.Obtained, Renew: l.Renew, Expires: l.Expires}
		if l.Router.IsValid() {
			nw.Lease.Router = l.Router.String()
		}
	}
	return nw
}

// NewTailnet shows the node's place on the tailnet.
func NewTailnet(st overlaystatus.Status) Tailnet {
	t := Tailnet{State: st.State, Name: st.Name, Control: st.Control, Error: st.Error}
	for _, ip := range st.IPs {
		t.IPs = append(t.IPs, ip.String())
	}
	for _, p := range st.Peers {
		peer := Peer{Name: p.Name, Online: p.Online, Tags: p.Tags, LastSeen: p.LastSeen}
		for _, ip := range p.IPs {
			peer.IPs = append(peer.IPs, ip.String())
		}
		t.Peers = append(t.Peers, peer)
	}
	return t
}

// NewDnstap shows the dnstap output's state.
func NewDnstap(st dnstap.Stats) DnstapStatus {
	return DnstapStatus{Target: st.Target, Connected: st.Connected, Sent: st.Sent, Dropped: st.Dropped + st.TooLarge, Error: st.Error}
}

// NewLogLines shows recent log lines.
func NewLogLines(ls []logring.Line) []LogLine {
	var out []LogLine
	for _, l := range ls {
		out = append(out, LogLine{Time: l.Time, Level: l.Level.String(), Message: l.Message})
	}
	return out
}

// NewHealth shows the node's health, part by part.
func NewHealth(r health.Report) Health {
	ok, why := r.Verdict()
	h := Health{OK: ok, Why: why}
	for _, p := range health.Parts {
		c := r.Part(p)
		h.Parts = append(h.Parts, HealthPart{Name: string(p), OK: c.OK, Why: c.Why})
	}
	return h
}
