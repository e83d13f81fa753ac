package bgp

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// startSpeaker runs a speaker until the test ends.
func startSpeaker(t *testing.T, cfg Config) *Speaker {
	t.Helper()
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5 s of cancel")
		}
	})
	return s
}

func peerStatus(s *Speaker, name string) PeerStatus {
	for _, ps := range s.Status() {
		if ps.Name == name {
			return ps
		}
	}
	return PeerStatus{}
}

func waitState(t *testing.T, s *Speaker, name, state string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, name+" "+state, func() bool { return peerStatus(s, name).State == state })
}

func fakeConfig(peers ...PeerConfig) Config {
	return Config{LocalASN: 65000, RouterID: netip.MustParseAddr("192.0.2.1"), Peers: peers}
}

func TestFakePeerSession(t *testing.T) {
	f := listenFake(t, "127.0.0.2", 4200000002, 0)
	s := startSpeaker(t, fakeConfig(PeerConfig{
		Name: "fake", Address: f.addr(), Port: f.port(), RemoteASN: 4200000002,
		NextHop6: netip.MustParseAddr("2001:db8::1"), HoldTime: 9 * time.Second,
	}))
	if err := s.SetRoutes([]Route{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Communities: []uint32{Community(65000, 1)}},
		{Prefix: netip.MustParsePrefix("2001:db8:53::/48"), MED: u32(7)},
	}); err != nil {
		t.Fatal(err)
	}
	fc := f.accept(t, 5*time.Second, true)

	// The OPEN: 4-byte ASN, MP for both families, hold time 9, and
	// neither route-refresh nor graceful-restart.
	if fc.open.HoldTime != 9 || fc.open.MyAS != 65000 {
		t.Errorf("OPEN hold %d AS %d", fc.open.HoldTime, fc.open.MyAS)
	}
	var caps []string
	for _, o := range fc.open.OptParams {
		if c, ok := o.(*gbgp.OptionParameterCapability); ok {
			for _, cp := range c.Capability {
				caps = append(caps, fmt.Sprintf("%d", cp.Code()))
				if mp, ok := cp.(*gbgp.CapMultiProtocol); ok {
					caps[len(caps)-1] += "/" + mp.CapValue.String()
				}
			}
		}
	}
	if got := strings.Join(caps, " "); got != "65 1/ipv4-unicast 1/ipv6-unicast" {
		t.Errorf("capabilities %q", got)
	}

	waitState(t, s, "fake", StateEstablished, 5*time.Second)
	eventually(t, 2*time.Second, "both routes at the peer", func() bool { return fc.count() == 2 })
	for _, a := range fc.route("198.51.100.0/24") {
		if nh, ok := a.(*gbgp.PathAttributeNextHop); ok && nh.Value.String() != "127.0.0.1" {
			t.Errorf("IPv4 next hop %v, want the session's source address", nh.Value)
		}
	}
	for _, a := range fc.route("2001:db8:53::/48") {
		if mp, ok := a.(*gbgp.PathAttributeMpReachNLRI); ok && mp.Nexthop.String() != "2001:db8::1" {
			t.Errorf("IPv6 next hop %v", mp.Nexthop)
		}
	}

	// What the neighbour sends is counted, re-announcements once.
	sp := sessionParams{localASN: 4200000002, nextHop4: netip.MustParseAddr("127.0.0.2"), nextHop6: netip.MustParseAddr("2001:db8::2")}
	rt := mustRIB(t, Route{Prefix: netip.MustParsePrefix("10.0.0.0/8")}).routes[netip.MustParsePrefix("10.0.0.0/8")]
	in := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.1.0.0/16")}
	in6 := []netip.Prefix{netip.MustParsePrefix("2001:db8:ffff::/48")}
	for range 2 {
		for _, m := range append(must(sp.announce(famIPv4, rt, in)), must(sp.announce(famIPv6, rt, in6))...) {
			fc.sendUpdate(t, m)
		}
	}
	eventually(t, 2*time.Second, "3 routes received", func() bool { return peerStatus(s, "fake").RoutesReceived == 3 })
	if ps := peerStatus(s, "fake"); ps.PrefixesSent != 2 || strings.Join(ps.Families, ",") != "ipv4-unicast,ipv6-unicast" {
		t.Errorf("status %+v", ps)
	}

	if err := s.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("2001:db8:53::/48"), MED: u32(8)}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "IPv4 route withdrawn", func() bool { return fc.count() == 1 })
	eventually(t, 2*time.Second, "MED changed", func() bool {
		for _, a := range fc.route("2001:db8:53::/48") {
			if m, ok := a.(*gbgp.PathAttributeMultiExitDisc); ok {
				return m.Value == 8
			}
		}
		return false
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A neighbour proposing hold time 0 would crash corebgp v0.8.5; the guard
// refuses it with "Unacceptable Hold Time" and the process lives on.
func TestFakePeerHoldTimeZeroRefused(t *testing.T) {
	f := listenFake(t, "127.0.0.2", 65001, 0)
	f.holdTime = 0
	s := startSpeaker(t, fakeConfig(PeerConfig{Name: "fake", Address: f.addr(), Port: f.port(), RemoteASN: 65001}))
	fc := f.accept(t, 5*time.Second, true)
	eventually(t, 2*time.Second, "NOTIFICATION", func() bool { return fc.notification() != nil })
	if n := fc.notification(); n.ErrorCode != 2 || n.ErrorSubcode != 6 {
		t.Errorf("NOTIFICATION %d/%d, want 2/6", n.ErrorCode, n.ErrorSubcode)
	}
	eventually(t, 2*time.Second, "error in status", func() bool {
		return strings.Contains(peerStatus(s, "fake").LastError, "hold time 0")
	})
	// It redials, and a sane neighbour gets a session.
	f.holdTime = 3
	f.accept(t, 5*time.Second, true)
	waitState(t, s, "fake", StateEstablished, 2*time.Second)
}

// corebgp's own errors reach PeerStatus through its log.
func TestFakePeerBadAS(t *testing.T) {
	f := listenFake(t, "127.0.0.2", 65009, 0)
	s := startSpeaker(t, fakeConfig(PeerConfig{Name: "fake", Address: f.addr(), Port: f.port(), RemoteASN: 65001}))
	fc := f.accept(t, 5*time.Second, true)
	eventually(t, 2*time.Second, "NOTIFICATION", func() bool { return fc.notification() != nil })
	eventually(t, 2*time.Second, "Bad Peer AS in status", func() bool {
		return strings.Contains(peerStatus(s, "fake").LastError, "Bad Peer AS")
	})
	if ps := peerStatus(s, "fake"); ps.State == StateEstablished || !strings.Contains(ps.LastError, "damped") {
		t.Errorf("status %+v", ps)
	}
}

func TestFakePeerMaxPrefix(t *testing.T) {
	f := listenFake(t, "127.0.0.2", 65001, 0)
	s := startSpeaker(t, fakeConfig(PeerConfig{
		Name: "fake", Address: f.addr(), Port: f.port(), RemoteASN: 65001,
		MaxPrefixes: 2, MaxPrefixRestart: 1500 * time.Millisecond,
	}))
	fc := f.accept(t, 5*time.Second, true)
	waitState(t, s, "fake", StateEstablished, 2*time.Second)
	sp := sessionParams{localASN: 65001, nextHop4: netip.MustParseAddr("127.0.0.2")}
	in := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("10.0.1.0/24")}
	rt := mustRIB(t, Route{Prefix: in[0]}).routes[in[0]]
	for _, m := range must(sp.announce(famIPv4, rt, in)) {
		fc.sendUpdate(t, m)
	}
	eventually(t, 2*time.Second, "2 received", func() bool { return peerStatus(s, "fake").RoutesReceived == 2 })
	if fc.notification() != nil {
		t.Fatal("closed at the limit, not above it")
	}
	for _, m := range must(sp.announce(famIPv4, rt, []netip.Prefix{netip.MustParsePrefix("10.0.2.0/24")})) {
		fc.sendUpdate(t, m)
	}
	eventually(t, 2*time.Second, "CEASE", func() bool { return fc.notification() != nil })
	closedAt := time.Now()
	n := fc.notification()
	if n.ErrorCode != 6 || n.ErrorSubcode != 1 || len(n.Data) != 7 ||
		binary.BigEndian.Uint16(n.Data) != 1 || n.Data[2] != 1 || binary.BigEndian.Uint32(n.Data[3:]) != 2 {
		t.Errorf("NOTIFICATION %d/%d data %x, want 6/1 AFI 1 SAFI 1 limit 2", n.ErrorCode, n.ErrorSubcode, n.Data)
	}
	ps := peerStatus(s, "fake")
	if ps.State != StateHeldDown || !strings.Contains(ps.LastError, "max-prefix") {
		t.Errorf("status %+v", ps)
	}
	f.accept(t, 5*time.Second, true)
	if d := time.Since(closedAt); d < 1500*time.Millisecond {
		t.Errorf("redialed %v after the max-prefix cease, before the 1.5 s hold-down", d)
	}
	waitState(t, s, "fake", StateEstablished, 2*time.Second)
}

// A neighbour that stops reading must not hold up SetRoutes or other
// sessions.
func TestSlowPeerDoesNotBlock(t *testing.T) {
	stalled := listenFake(t, "127.0.0.2", 65001, 4096)
	healthy := listenFake(t, "127.0.0.3", 65001, 0)
	s := startSpeaker(t, fakeConfig(
		PeerConfig{Name: "stalled", Address: stalled.addr(), Port: stalled.port(), RemoteASN: 65001},
		PeerConfig{Name: "healthy", Address: healthy.addr(), Port: healthy.port(), RemoteASN: 65001},
	))
	stalled.accept(t, 5*time.Second, false)
	hc := healthy.accept(t, 5*time.Second, true)
	waitState(t, s, "stalled", StateEstablished, 2*time.Second)
	waitState(t, s, "healthy", StateEstablished, 2*time.Second)

	// Distinct MEDs defeat packing: one UPDATE per prefix, several MB in
	// all, more than the kernel buffers towards the stalled peer.
	const n = 100000
	routes := make([]Route, n)
	for i := range routes {
		routes[i] = Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32), MED: u32(uint32(i))}
	}
	if err := s.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	// Building the RIB of 100k routes costs CPU (seconds under -race);
	// what must not happen is SetRoutes waiting for a peer, so the
	// timings below are taken on small calls while the peer is stalled.
	if err := s.SetRoutes(routes[:n-1]); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 30*time.Second, "healthy peer has all routes", func() bool { return hc.count() == n-1 })
	t.Logf("healthy peer received %d routes in %v", n-1, took)
	if sent := peerStatus(s, "stalled").PrefixesSent; sent >= n-1 {
		t.Errorf("stalled peer got all %d prefixes: the test did not stall it", sent)
	} else {
		t.Logf("stalled peer: %d prefixes sent before its buffers filled", sent)
	}
	one := routes[:1]
	for i, rs := range [][]Route{one, nil} {
		start := time.Now()
		if err := s.SetRoutes(rs); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Errorf("SetRoutes #%d took %v with a stalled peer", i, d)
		}
	}
	eventually(t, 30*time.Second, "healthy peer withdrew all", func() bool { return hc.count() == 0 })
}

func TestDropSession(t *testing.T) {
	f := listenFake(t, "127.0.0.2", 65001, 0)
	s := startSpeaker(t, fakeConfig(PeerConfig{Name: "fake", Address: f.addr(), Port: f.port(), RemoteASN: 65001}))
	fc := f.accept(t, 5*time.Second, true)
	waitState(t, s, "fake", StateEstablished, 2*time.Second)
	if err := s.DropSession("nobody", "x"); err == nil {
		t.Error("unknown peer accepted")
	}
	if err := s.DropSession("fake", "bfd: path down"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fc.closed:
	case <-time.After(2 * time.Second):
		t.Fatal("connection not closed")
	}
	eventually(t, 2*time.Second, "session down", func() bool { return peerStatus(s, "fake").State != StateEstablished })
	if ps := peerStatus(s, "fake"); ps.LastError != "bfd: path down" {
		t.Errorf("last error %q", ps.LastError)
	}
	f.accept(t, 5*time.Second, true)
	waitState(t, s, "fake", StateEstablished, 2*time.Second)
}
