package bgp

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/nslab"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// gobgpd is a GoBGP daemon in the peer namespace; its API listens on the
// namespace's own loopback.
type gobgpd struct{ *refserver.GoBGP }

func startGoBGP(t *testing.T, l *nslab.Lab, conf string) *gobgpd {
	t.Helper()
	return &gobgpd{l.StartGoBGP(t, conf)}
}

func (g *gobgpd) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := g.CLI(args...)
	if err != nil {
		t.Fatalf("gobgp %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// adjOut counts the routes of a family gobgpd has sent us.
func (g *gobgpd) adjOut(t *testing.T, family string) int {
	t.Helper()
	out := g.cli(t, "neighbor", spkIP4, "adj-out", "-a", family, "-j")
	var rib map[string]json.RawMessage
	if strings.TrimSpace(out) == "" || strings.TrimSpace(out) == "null" {
		return 0
	}
	if err := json.Unmarshal([]byte(out), &rib); err != nil {
		t.Fatalf("gobgp adj-out JSON: %v: %s", err, out)
	}
	return len(rib)
}

// gobgpPath is the part of `gobgp global rib -j` the test reads.
type gobgpPath struct {
	Nexthop     string
	ASPath      []uint32
	MED         *uint32
	Communities []uint32
	Large       []string
}

func (g *gobgpd) rib(t *testing.T, family string) map[string]gobgpPath {
	t.Helper()
	var raw map[string][]struct {
		Attrs []json.RawMessage `json:"attrs"`
	}
	out := g.cli(t, "global", "rib", "-a", family, "-j")
	if testing.Verbose() {
		t.Logf("gobgp global rib -a %s -j: %s", family, out)
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("gobgp rib JSON: %v\n%s", err, out)
	}
	rib := map[string]gobgpPath{}
	for pfx, paths := range raw {
		var p gobgpPath
		for _, a := range paths[0].Attrs {
			var attr struct {
				Type        int                       `json:"type"`
				Nexthop     string                    `json:"nexthop"`
				Metric      uint32                    `json:"metric"`
				AsPaths     []struct{ ASNs []uint32 } `json:"as_paths"`
				Communities []uint32                  `json:"communities"`
				Value       json.RawMessage           `json:"value"`
			}
			if err := json.Unmarshal(a, &attr); err != nil {
				t.Fatal(err)
			}
			switch attr.Type {
			case 2:
				for _, seg := range attr.AsPaths {
					p.ASPath = append(p.ASPath, seg.ASNs...)
				}
			case 3, 14:
				p.Nexthop = attr.Nexthop
			case 4:
				m := attr.Metric
				p.MED = &m
			case 8:
				p.Communities = attr.Communities
			case 32:
				var lcs []struct{ ASN, LocalData1, LocalData2 uint32 }
				if err := json.Unmarshal(attr.Value, &lcs); err != nil {
					t.Fatalf("large communities %s: %v", attr.Value, err)
				}
				for _, lc := range lcs {
					p.Large = append(p.Large, fmt.Sprintf("%d:%d:%d", lc.ASN, lc.LocalData1, lc.LocalData2))
				}
			}
		}
		rib[pfx] = p
	}
	return rib
}

func fmtMED(m *uint32) string {
	if m == nil {
		return "none"
	}
	return fmt.Sprint(*m)
}

const gobgpConf = `
[global.config]
  as = 65002
  router-id = "` + peerIP4 + `"
  local-address-list = ["` + peerIP4 + `"]
`

// gobgpd over one IPv4 session carrying IPv6 too (explicit IPv6 next hop),
// then max-prefix with routes injected at gobgpd.
func TestGoBGP(t *testing.T) {
	l := nslab.Require(t)
	g := startGoBGP(t, l, gobgpConf+refserver.GoBGPNeighbor(spkIP4, 65000, 0))
	s := startSpeaker(t, Config{
		LocalASN: 65000, RouterID: netip.MustParseAddr(spkIP4),
		Peers: []PeerConfig{{Name: "gobgp", Address: netip.MustParseAddr(peerIP4), RemoteASN: 65002,
			NextHop6: netip.MustParseAddr(spkIP6), MaxPrefixes: 5, MaxPrefixRestart: 2 * time.Second}},
	})
	if err := s.SetRoutes(ebgpRoutes(false)); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "gobgp", StateEstablished, 5*time.Second)
	eventually(t, 3*time.Second, "routes at gobgpd", func() bool {
		return len(g.rib(t, "ipv4")) == 2 && len(g.rib(t, "ipv6")) == 2
	})
	r4, r6 := g.rib(t, "ipv4"), g.rib(t, "ipv6")
	check := func(got gobgpPath, nh string, path []uint32, med *uint32, comms []uint32, large []string) {
		t.Helper()
		if got.Nexthop != nh || !slices.Equal(got.ASPath, path) || !slices.Equal(got.Communities, comms) || !slices.Equal(got.Large, large) ||
			(med == nil) != (got.MED == nil) || (med != nil && *med != *got.MED) {
			t.Errorf("gobgpd path %+v (MED %s), want next hop %s path %v MED %s communities %v large %v",
				got, fmtMED(got.MED), nh, path, fmtMED(med), comms, large)
		}
	}
	check(r4["192.0.2.53/32"], spkIP4, []uint32{65000}, nil, nil, nil)
	check(r4["198.51.100.0/24"], spkIP4, []uint32{65000, 65000, 65000}, u32(50), []uint32{Community(65000, 100)}, []string{"65000:1:2"})
	check(r6["2001:db8:53::53/128"], spkIP6, []uint32{65000}, nil, nil, nil)
	check(r6["2001:db8:53::/48"], spkIP6, []uint32{65000, 65000}, u32(60), []uint32{Community(65000, 200)}, []string{"65000:3:4"})

	if err := s.SetRoutes(ebgpRoutes(true)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "65535:0 at gobgpd", func() bool {
		return slices.Contains(g.rib(t, "ipv6")["2001:db8:53::/48"].Communities, GracefulShutdownCommunity)
	})
	if err := s.SetRoutes(nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "routes withdrawn at gobgpd", func() bool {
		return len(g.rib(t, "ipv4")) == 0 && len(g.rib(t, "ipv6")) == 0
	})

	// Max-prefix: gobgpd sends 5, 5 is the limit, the sixth closes the
	// session with CEASE subcode 1.
	for i := range 5 {
		g.cli(t, "global", "rib", "add", "-a", "ipv4", fmt.Sprintf("10.200.%d.0/24", i))
	}
	eventually(t, 3*time.Second, "5 received", func() bool { return peerStatus(s, "gobgp").RoutesReceived == 5 })
	g.cli(t, "global", "rib", "add", "-a", "ipv6", "2001:db8:200::/48")
	eventually(t, 3*time.Second, "session held down", func() bool { return peerStatus(s, "gobgp").State == StateHeldDown })
	downAt := time.Now()
	if ps := peerStatus(s, "gobgp"); !strings.Contains(ps.LastError, "max-prefix: neighbour announced 6 prefixes, limit 5") {
		t.Errorf("status %+v", ps)
	}
	if log := g.Log(); !strings.Contains(log, "subcode 1(maximum number of prefixes reached)") {
		t.Errorf("gobgpd did not log the max-prefix CEASE:\n%s", log)
	}
	// After the hold-down it comes back; with one route fewer it stays.
	g.cli(t, "global", "rib", "del", "-a", "ipv6", "2001:db8:200::/48")
	// gobgpd itself refuses connections for about 6 s after a CEASE.
	waitState(t, s, "gobgp", StateEstablished, 10*time.Second)
	t.Logf("re-established %v after the max-prefix cease (our hold-down 2 s)", time.Since(downAt))
	// It stays: gobgpd has sent us all it has (its adj-RIB-out for us is
	// the 5 IPv4 routes and no IPv6 one) and we hold them, established.
	eventually(t, 3*time.Second, "the 5 routes received again", func() bool {
		return peerStatus(s, "gobgp").RoutesReceived == 5 && g.adjOut(t, "ipv4") == 5 && g.adjOut(t, "ipv6") == 0
	})
	if ps := peerStatus(s, "gobgp"); ps.State != StateEstablished || ps.RoutesReceived != 5 {
		t.Errorf("after restart: %+v", ps)
	}
}
