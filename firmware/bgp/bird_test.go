package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/nslab"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// bird is a BIRD 2 in the lab's peer namespace.
type bird struct{ *refserver.Bird }

// startBIRD runs BIRD with the given protocols after a common preamble:
// router ID, device scanning, and static routes for it to send us (two
// IPv4, one IPv6), so that received-route counting is exercised too.
func startBIRD(t *testing.T, l *nslab.Lab, protocols string) *bird {
	t.Helper()
	return &bird{l.StartBIRD(t, `log stderr all;
router id `+peerIP4+`;
protocol device { scan time 1; }
protocol static st4 { ipv4; route 203.0.113.0/24 blackhole; route 203.0.113.128/25 blackhole; }
protocol static st6 { ipv6; route 2001:db8:ffff::/48 blackhole; }
`+protocols)}
}

func (b *bird) cmd(t *testing.T, args ...string) string {
	t.Helper()
	return b.Cmd(t, args...)
}

func (b *bird) established(t *testing.T, proto string) bool {
	return strings.Contains(b.cmd(t, "show", "protocols", proto), "Established")
}

// routes parses `show route all protocol P` into one text block per
// prefix.
func (b *bird) routes(t *testing.T, proto string) map[string]string {
	t.Helper()
	out := b.cmd(t, "show", "route", "all", "protocol", proto)
	blocks := map[string]string{}
	cur := ""
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			f := strings.Fields(line)
			if _, err := netip.ParsePrefix(f[0]); err == nil {
				cur = f[0]
				blocks[cur] = line + "\n"
				continue
			}
			cur = ""
			continue
		}
		if cur != "" {
			blocks[cur] += strings.TrimSpace(line) + "\n"
		}
	}
	return blocks
}

// wantAttrs checks that a route block carries each attribute line.
func wantAttrs(t *testing.T, blocks map[string]string, prefix string, lines ...string) {
	t.Helper()
	blk, ok := blocks[prefix]
	if !ok {
		t.Errorf("BIRD has no route for %s", prefix)
		return
	}
	for _, l := range lines {
		if !strings.Contains(blk, l+"\n") {
			t.Errorf("BIRD route %s lacks %q:\n%s", prefix, l, blk)
		}
	}
}

// ebgpRoutes is the announcement the eBGP tests make: a primary prefix
// plainly and a secondary with prepend and MED, in each family, with
// communities and large communities.
func ebgpRoutes(gshut bool) []Route {
	return []Route{
		{Prefix: netip.MustParsePrefix("192.0.2.53/32"), GracefulShutdown: gshut},
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Communities: []uint32{Community(65000, 100)},
			LargeCommunities: []LargeCommunity{{65000, 1, 2}}, Prepend: 2, MED: u32(50), GracefulShutdown: gshut},
		{Prefix: netip.MustParsePrefix("2001:db8:53::53/128"), GracefulShutdown: gshut},
		{Prefix: netip.MustParsePrefix("2001:db8:53::/48"), Communities: []uint32{Community(65000, 200)},
			LargeCommunities: []LargeCommunity{{65000, 3, 4}}, Prepend: 1, MED: u32(60), GracefulShutdown: gshut},
	}
}

const birdEBGP = `
protocol bgp spk4 {
	local ` + peerIP4 + ` as 65001;
	neighbor ` + spkIP4 + ` as 65000;
	passive on;
	hold time 9;
	password "v4-secret";
	ipv4 { import all; export where proto = "st4"; };
}
protocol bgp spk6 {
	local ` + peerIP6 + ` as 65001;
	neighbor ` + spkIP6 + ` as 65000;
	passive on;
	ipv6 { import all; export where proto = "st6"; };
}
`

// ebgpConfig is the speaker's side of birdEBGP: separate IPv4 and IPv6
// sessions, as most upstreams run them; we dial.
func ebgpConfig() Config {
	return Config{
		LocalASN: 65000, RouterID: netip.MustParseAddr(spkIP4),
		Peers: []PeerConfig{
			{Name: "v4", Address: netip.MustParseAddr(peerIP4), RemoteASN: 65001, HoldTime: 9 * time.Second, MD5Password: "v4-secret"},
			{Name: "v6", Address: netip.MustParseAddr(peerIP6), RemoteASN: 65001},
		},
	}
}

func TestBIRDEBGP(t *testing.T) {
	l := nslab.Require(t)
	b := startBIRD(t, l, birdEBGP)
	s := startSpeaker(t, ebgpConfig())
	if err := s.SetRoutes(ebgpRoutes(false)); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 5*time.Second, "both sessions established at BIRD", func() bool {
		return b.established(t, "spk4") && b.established(t, "spk6")
	})
	t.Logf("sessions established %v after start (IPv4 with TCP-MD5)", took)
	eventually(t, 3*time.Second, "routes at BIRD", func() bool {
		return len(b.routes(t, "spk4")) == 2 && len(b.routes(t, "spk6")) == 2
	})
	r4, r6 := b.routes(t, "spk4"), b.routes(t, "spk6")
	wantAttrs(t, r4, "192.0.2.53/32", "BGP.as_path: 65000", "BGP.next_hop: "+spkIP4)
	wantAttrs(t, r4, "198.51.100.0/24", "BGP.origin: IGP", "BGP.as_path: 65000 65000 65000", "BGP.next_hop: "+spkIP4,
		"BGP.med: 50", "BGP.community: (65000,100)", "BGP.large_community: (65000, 1, 2)")
	wantAttrs(t, r6, "2001:db8:53::53/128", "BGP.as_path: 65000", "BGP.next_hop: "+spkIP6)
	wantAttrs(t, r6, "2001:db8:53::/48", "BGP.as_path: 65000 65000", "BGP.next_hop: "+spkIP6,
		"BGP.med: 60", "BGP.community: (65000,200)", "BGP.large_community: (65000, 3, 4)")

	eventually(t, 3*time.Second, "status counts", func() bool {
		v4, v6 := peerStatus(s, "v4"), peerStatus(s, "v6")
		return v4.PrefixesSent == 2 && v6.PrefixesSent == 2 && v4.RoutesReceived == 2 && v6.RoutesReceived == 1
	})
	if ps := peerStatus(s, "v4"); ps.State != StateEstablished || ps.Since.IsZero() || ps.IBGP {
		t.Errorf("status %+v", ps)
	}

	// Drain: the same routes with GRACEFUL_SHUTDOWN.
	if err := s.SetRoutes(ebgpRoutes(true)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "65535:0 on all routes at BIRD", func() bool {
		n := 0
		for _, rs := range []map[string]string{b.routes(t, "spk4"), b.routes(t, "spk6")} {
			for _, blk := range rs {
				if strings.Contains(blk, "(65535,0)") {
					n++
				}
			}
		}
		return n == 4
	})
	wantAttrs(t, b.routes(t, "spk4"), "198.51.100.0/24", "BGP.community: (65000,100) (65535,0)", "BGP.med: 50")

	// Withdraw.
	if err := s.SetRoutes(nil); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, 3*time.Second, "routes gone from BIRD", func() bool {
		return len(b.routes(t, "spk4")) == 0 && len(b.routes(t, "spk6")) == 0
	})
	t.Logf("withdrawal visible at BIRD after %v", took)
	if !b.established(t, "spk4") || !b.established(t, "spk6") {
		t.Error("a session dropped on withdrawal")
	}
}

// iBGP over one IPv6 session carrying both families; BIRD dials, we
// listen, with TCP-MD5 on the listening socket.
func TestBIRDIBGP(t *testing.T) {
	l := nslab.Require(t)
	s := startSpeaker(t, Config{
		LocalASN: 65000, RouterID: netip.MustParseAddr(spkIP4), ListenAddrs: []string{"[::]:179"},
		Peers: []PeerConfig{{Name: "rr", Address: netip.MustParseAddr(peerIP6), RemoteASN: 65000, Passive: true,
			MD5Password: "ibgp-secret", NextHop4: netip.MustParseAddr(spkIP4)}},
	})
	routes := []Route{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), LocalPref: u32(200), MED: u32(10), Prepend: 3,
			Communities: []uint32{Community(65000, 1)}, LargeCommunities: []LargeCommunity{{65000, 5, 6}}},
		{Prefix: netip.MustParsePrefix("2001:db8:53::/48"), LocalPref: u32(50)},
	}
	if err := s.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	b := startBIRD(t, l, `
protocol bgp spk {
	local `+peerIP6+` as 65000;
	neighbor `+spkIP6+` as 65000;
	direct; # iBGP is multihop to BIRD unless told; next hops are on-link
	connect delay time 1; connect retry time 2; error wait time 1, 2;
	password "ibgp-secret";
	ipv4 { import all; export none; };
	ipv6 { import all; export none; };
}
`)
	took := eventually(t, 8*time.Second, "iBGP established", func() bool { return b.established(t, "spk") })
	t.Logf("iBGP established %v after BIRD start", took)
	eventually(t, 3*time.Second, "routes at BIRD", func() bool { return len(b.routes(t, "spk")) == 2 })
	r := b.routes(t, "spk")
	wantAttrs(t, r, "198.51.100.0/24", "BGP.as_path:", "BGP.next_hop: "+spkIP4, "BGP.local_pref: 200", "BGP.med: 10",
		"BGP.community: (65000,1)", "BGP.large_community: (65000, 5, 6)")
	wantAttrs(t, r, "2001:db8:53::/48", "BGP.as_path:", "BGP.next_hop: "+spkIP6, "BGP.local_pref: 50")
	if ps := peerStatus(s, "rr"); !ps.IBGP || strings.Join(ps.Families, ",") != "ipv4-unicast,ipv6-unicast" {
		t.Errorf("status %+v", ps)
	}

	// Graceful shutdown inside the AS: 65535:0 and LOCAL_PREF 0.
	for i := range routes {
		routes[i].GracefulShutdown = true
	}
	if err := s.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "local-pref 0 at BIRD", func() bool {
		r := b.routes(t, "spk")
		return strings.Contains(r["198.51.100.0/24"], "BGP.local_pref: 0\n") && strings.Contains(r["2001:db8:53::/48"], "BGP.local_pref: 0\n")
	})
	r = b.routes(t, "spk")
	wantAttrs(t, r, "198.51.100.0/24", "BGP.community: (65000,1) (65535,0)")
	wantAttrs(t, r, "2001:db8:53::/48", "BGP.community: (65535,0)")

	if err := s.SetRoutes(nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "routes withdrawn", func() bool { return len(b.routes(t, "spk")) == 0 })
}

// A wrong TCP-MD5 password: the kernel drops the segments and no session
// comes up, in either direction.
func TestBIRDWrongMD5(t *testing.T) {
	l := nslab.Require(t)
	b := startBIRD(t, l, `
protocol bgp spk4 {
	local `+peerIP4+` as 65001;
	neighbor `+spkIP4+` as 65000;
	connect delay time 1; connect retry time 1; error wait time 1, 2;
	password "right";
	ipv4 { import all; export none; };
}
`)
	s := startSpeaker(t, Config{
		LocalASN: 65000, RouterID: netip.MustParseAddr(spkIP4), ListenAddrs: []string{spkIP4 + ":179"},
		Peers: []PeerConfig{{Name: "v4", Address: netip.MustParseAddr(peerIP4), RemoteASN: 65001, MD5Password: "wrong"}},
	})
	// Not synchronisation: nothing happens to wait for (the kernel drops
	// the segments silently); the test is that no session comes up while
	// both sides retry (every second) for three seconds.
	time.Sleep(3 * time.Second)
	if ps := peerStatus(s, "v4"); ps.State == StateEstablished || ps.State == "openSent" || ps.State == "openConfirm" {
		t.Errorf("session progressed with a wrong password: %+v", ps)
	}
	if b.established(t, "spk4") {
		t.Error("BIRD established with a wrong password")
	}
	t.Logf("status with wrong password: %+v", peerStatus(s, "v4"))
}
