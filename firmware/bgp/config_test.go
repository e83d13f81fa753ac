package bgp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidation(t *testing.T) {
	ok := func() Config {
		return Config{LocalASN: 65000, RouterID: netip.MustParseAddr("192.0.2.1"), ListenAddrs: []string{"127.0.0.1:0"},
			Peers: []PeerConfig{{Address: netip.MustParseAddr("192.0.2.2"), RemoteASN: 65001}}}
	}
	if _, err := New(ok(), nil); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"asn 0":          {func(c *Config) { c.LocalASN = 0 }, "local ASN"},
		"router id v6":   {func(c *Config) { c.RouterID = netip.MustParseAddr("::1") }, "router ID"},
		"peer asn 0":     {func(c *Config) { c.Peers[0].RemoteASN = 0 }, "remote ASN"},
		"no address":     {func(c *Config) { c.Peers[0].Address = netip.Addr{} }, "address missing"},
		"mixed local":    {func(c *Config) { c.Peers[0].LocalAddress = netip.MustParseAddr("::1") }, "differ in family"},
		"hold 2s":        {func(c *Config) { c.Peers[0].HoldTime = 2 * time.Second }, "hold time"},
		"hold fraction":  {func(c *Config) { c.Peers[0].HoldTime = 3500 * time.Millisecond }, "hold time"},
		"md5 too long":   {func(c *Config) { c.Peers[0].MD5Password = strings.Repeat("x", 81) }, "MD5"},
		"nexthop4 is v6": {func(c *Config) { c.Peers[0].NextHop4 = netip.MustParseAddr("2001:db8::1") }, "not IPv4"},
		"nexthop6 is v4": {func(c *Config) { c.Peers[0].NextHop6 = netip.MustParseAddr("192.0.2.9") }, "not IPv6"},
		"passive, no listener": {func(c *Config) {
			c.ListenAddrs = nil
			c.Peers[0].Passive = true
		}, "listen address"},
		"duplicate address": {func(c *Config) {
			c.Peers = append(c.Peers, PeerConfig{Name: "b", Address: c.Peers[0].Address, RemoteASN: 1})
		}, "duplicate peer address"},
		"duplicate name": {func(c *Config) {
			c.Peers = append(c.Peers, PeerConfig{Name: "192.0.2.2", Address: netip.MustParseAddr("192.0.2.3"), RemoteASN: 1})
		}, "duplicate peer name"},
		"negative limit": {func(c *Config) { c.Peers[0].MaxPrefixes = -1 }, "max prefixes"},
	} {
		c := ok()
		tc.mod(&c)
		if _, err := New(c, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tc.want)
		}
	}
	s, _ := New(ok(), nil)
	if p := s.peers[0].cfg; p.Port != 179 || p.HoldTime != 90*time.Second || p.Name != "192.0.2.2" || p.MaxPrefixRestart != time.Minute {
		t.Errorf("defaults not applied: %+v", p)
	}
}

func TestRunFailsOnBusyListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := Config{LocalASN: 65000, RouterID: netip.MustParseAddr("192.0.2.1"), ListenAddrs: []string{ln.Addr().String()}}
	s, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run on a busy address: %v", err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
}
