package config

import (
	"strings"
	"testing"
	"time"
)

// routingDoc uses every option of the network, bgp and health sections.
const routingDoc = `node:
  name: ams1
dns:
  listen: ["192.0.2.53:53", "[2001:db8:53::53]:53", "198.51.100.53:53"]
network:
  links:
    - name: eth0
      mtu: 9000
      addresses: [203.0.113.10/24, "2001:db8:1::10/64"]
      gateway4: 203.0.113.1
      gateway6: 2001:db8:1::1
    - name: eth1
      dhcp4: true
      accept_ra: true
  routes:
    - to: 10.0.0.0/8
      via: 203.0.113.2
      metric: 10
    - to: 172.16.0.0/12
      link: eth0
  anycast: [192.0.2.53, 2001:db8:53::53, 198.51.100.53]
  sysctls:
    net.core.rmem_max: "4194304"
  reconcile: 1m
bgp:
  asn: 4200000001
  router_id: 203.0.113.10
  listen: ["[::]:179"]
  hold_time: 30s
  peers:
    - name: transit
      address: 203.0.113.1
      asn: 64500
      md5_password: s3cret
      next_hop6: 2001:db8:1::10
      max_prefixes: 1000
      bfd: {enabled: true, min_tx: 100ms, min_rx: 100ms, multiplier: 5}
    - address: 2001:db8:1::1
      asn: 64500
      passive: true
      hold_time: 9s
  prefixes:
    - prefix: 192.0.2.0/24
      communities: ["64500:100", "65535:666"]
      large_communities: ["4200000001:1:2"]
      med: 10
    - prefix: 198.51.100.0/24
      prepend: 2
      local_pref: 50
    - prefix: 2001:db8:53::/48
health:
  interval: 100ms
  timeout: 80ms
  rise: 3
  fall: 2
  canary: {name: example.com, type: soa}
  prefixes:
    - prefix: 198.51.100.0/24
      canary: {name: example.net, type: NS}
      addresses: [198.51.100.53]
  drain: {wait: 10s, linger: 3s}
`

func TestRoutingSections(t *testing.T) {
	c, err := Parse([]byte(routingDoc))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Network.Enabled() || !c.BGP.Enabled() {
		t.Fatal("sections not enabled")
	}
	l := c.Network.Links[0]
	if l.MTU != 9000 || len(l.Addresses) != 2 || l.Addresses[0].String() != "203.0.113.10/24" || l.Gateway6.String() != "2001:db8:1::1" {
		t.Errorf("link %+v", l)
	}
	if !c.Network.Links[1].DHCP4 || !c.Network.Links[1].AcceptRA || *c.Network.NonlocalBind != true {
		t.Errorf("network %+v", c.Network)
	}
	if c.BGP.ASN != 4200000001 || len(c.BGP.Peers) != 2 {
		t.Fatalf("bgp %+v", c.BGP)
	}
	p := c.BGP.Peers[1]
	if p.Name != "2001:db8:1::1" || p.Port != 179 || time.Duration(p.HoldTime) != 9*time.Second || p.BFD.Enabled {
		t.Errorf("peer defaults %+v", p)
	}
	if p := c.BGP.Peers[0]; time.Duration(p.HoldTime) != 30*time.Second || p.BFD.Multiplier != 5 {
		t.Errorf("peer %+v", p)
	}
	a := c.BGP.Prefixes[0]
	if len(a.Communities) != 2 || a.Communities[1] != (Community{65535, 666}) || a.LargeCommunities[0] != (LargeCommunity{4200000001, 1, 2}) || *a.MED != 10 {
		t.Errorf("announce %+v", a)
	}
	if got := c.HealthAddresses(c.BGP.Prefixes[0].Prefix); len(got) != 1 || got[0].String() != "192.0.2.53" {
		t.Errorf("health addresses of 192.0.2.0/24: %v", got)
	}
	if got := c.HealthCanary(c.BGP.Prefixes[1].Prefix); got != (Canary{"example.net", "NS"}) {
		t.Errorf("canary of 198.51.100.0/24: %+v", got)
	}
	if got := c.HealthCanary(c.BGP.Prefixes[2].Prefix); got != (Canary{"example.com", "soa"}) {
		t.Errorf("canary of 2001:db8:53::/48: %+v", got)
	}
	if port, ok := c.DNSPort(c.Network.Anycast[1]); !ok || port != 53 {
		t.Errorf("DNSPort: %d %v", port, ok)
	}

	// The saved copy parses back to the same document.
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(b)
	if err != nil {
		t.Fatalf("marshalled config does not parse: %v\n%s", err, b)
	}
	b2, _ := c2.Marshal()
	if string(b) != string(b2) {
		t.Errorf("round trip changed the document:\n%s\n---\n%s", b, b2)
	}
}

func TestRoutingDefaults(t *testing.T) {
	c, err := Parse([]byte("node:\n  name: a\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Network.Enabled() || c.BGP.Enabled() {
		t.Error("empty sections enabled")
	}
	h := c.Health
	if time.Duration(h.Interval) != DefaultHealthInterval || time.Duration(h.Timeout) != DefaultHealthTimeout ||
		h.Rise != DefaultRise || h.Fall != DefaultFall || time.Duration(h.Drain.Wait) != DefaultDrainWait {
		t.Errorf("health defaults %+v", h)
	}
	// The defaults withdraw a failing node within a second.
	if worst := time.Duration(h.Fall)*time.Duration(h.Interval) + time.Duration(h.Timeout); worst > time.Second {
		t.Errorf("worst-case withdrawal %v", worst)
	}
}

// TestRoutingErrors: mistakes are reported with their line.
func TestRoutingErrors(t *testing.T) {
	base := "dns:\n  listen: [\"192.0.2.53:53\"]\nnetwork:\n  anycast: [192.0.2.53]\n"
	for _, c := range []struct {
		doc  string
		want []string
	}{
		{"network:\n  links:\n    - name: eth0\n      addresses: [192.0.2.1]\n", []string{"line 4", "prefix length"}},
		{"network:\n  links:\n    - name: eth0\n      gateway4: nope\n", []string{"line 4", "not an IP address"}},
		{"network:\n  links:\n    - name: eth0\n      mtu: 100\n", []string{"576..65535"}},
		{"network:\n  links:\n    - name: eth0\n    - name: eth0\n", []string{"listed twice"}},
		{"network:\n  links:\n    - name: eth0\n      dhcp4: true\n    - name: eth1\n      dhcp4: true\n", []string{"one management link"}},
		{"network:\n  links:\n    - name: eth0\n      colour: blue\n", []string{"line 4", "colour"}},
		{"network:\n  routes:\n    - to: 10.0.0.1/8\n      via: 192.0.2.1\n", []string{"host bits"}},
		{"network:\n  routes:\n    - to: 10.0.0.0/8\n", []string{"needs via or link"}},
		{"network:\n  routes:\n    - to: 10.0.0.0/8\n      link: eth9\n", []string{"not in network.links"}},
		{"network:\n  anycast: [127.0.0.1]\n", []string{"not a service address"}},
		{"network:\n  sysctls:\n    \"../etc\": x\n", []string{"not a name"}},
		{"bgp:\n  peers:\n    - address: 192.0.2.1\n      asn: 1\n", []string{"asn is required", "router_id"}},
		{"bgp:\n  asn: 1\n  router_id: 2001:db8::1\n", []string{"router_id"}},
		{"bgp:\n  asn: 1\n  router_id: 192.0.2.1\n  peers:\n    - address: 192.0.2.2\n      asn: 2\n      hold_time: 2s\n", []string{"line 7", "3s to 65535s"}},
		{"bgp:\n  asn: 1\n  router_id: 192.0.2.1\n  peers:\n    - address: 192.0.2.2\n      asn: 2\n      passive: true\n", []string{"passive needs bgp.listen"}},
		{"bgp:\n  asn: 1\n  router_id: 192.0.2.1\n  peers:\n    - address: 192.0.2.2\n      asn: 2\n      bfd: {min_tx: 1s}\n", []string{"bfd.enabled is false"}},
		{"bgp:\n  asn: 1\n  router_id: 192.0.2.1\n  peers:\n    - address: 192.0.2.2\n      asn: 2\n    - address: 192.0.2.2\n      asn: 3\n", []string{"listed twice"}},
		{base + "bgp:\n  asn: 1\n  router_id: 192.0.2.1\n  prefixes:\n    - prefix: 192.0.2.0/24\n      communities: [\"70000:1\"]\n", []string{"line 10", "ASN:VALUE"}},
		{base + "bgp:\n  asn: 1\n  router_id: 192.0.2.1\n  prefixes:\n    - prefix: 192.0.2.0/24\n      large_communities: [\"1:2\"]\n", []string{"line 10", "ASN:DATA1:DATA2"}},
		{base + "bgp:\n  asn: 1\n  router_id: 192.0.2.1\n  prefixes:\n    - prefix: 192.0.2.1/24\n", []string{"host bits"}},
		{base + "bgp:\n  asn: 1\n  router_id: 192.0.2.1\n  prefixes:\n    - prefix: 192.0.2.0/24\n      prepend: 20\n", []string{"0..16"}},
		{base + "bgp:\n  asn: 1\n  router_id: 192.0.2.1\n  prefixes:\n    - prefix: 198.51.100.0/24\n", []string{"covers no service address"}},
		{"dns:\n  listen: [\"192.0.2.53:53\"]\nnetwork:\n  anycast: [2001:db8::53]\nbgp:\n  asn: 1\n  router_id: 192.0.2.1\n  prefixes:\n    - prefix: 2001:db8::/32\n", []string{"no socket for service address 2001:db8::53"}},
		{"health:\n  interval: 100ms\n  timeout: 200ms\n", []string{"longer than interval"}},
		{"health:\n  canary: {name: example.com, type: BOGUS}\n", []string{"not a record type"}},
		{"health:\n  prefixes:\n    - prefix: 192.0.2.0/24\n", []string{"not in bgp.prefixes"}},
		{base + "bgp:\n  asn: 1\n  router_id: 192.0.2.1\n  prefixes:\n    - prefix: 192.0.2.0/24\nhealth:\n  prefixes:\n    - prefix: 192.0.2.0/24\n      addresses: [198.51.100.1]\n", []string{"outside it"}},
	} {
		_, err := Parse([]byte(c.doc))
		if err == nil {
			t.Errorf("%q: accepted", c.doc)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", c.doc, err, w)
			}
		}
	}
}
