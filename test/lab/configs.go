package lab

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/test/refserver"
)

// The lab's numbering; see the package comment.
const (
	RouterASN = 65000
	GoBGPASN  = 65002
	NodeASN   = 65053
	GoBGPPort = 1179
	Zone      = "example.test."
	// MgmtAPI is where each node's management API listens, inside its
	// own namespace.
	MgmtAPI = "127.0.0.1:8053"
)

// The announced prefixes, the service addresses inside them, and the
// client's addresses.
const (
	Anycast4   = "10.53.0.53"
	Anycast6   = "fd53::53"
	Secondary4 = "10.53.1.53"
	Secondary6 = "fd53:1::53"
	Primary4P  = "10.53.0.53/32"
	Primary6P  = "fd53::53/128"
	Second4P   = "10.53.1.0/24"
	Second6P   = "fd53:1::/48"
	ClientIP4  = "10.80.100.2"
	ClientIP6  = "fd80:100::2"
)

// Prefixes are all four announced prefixes.
func Prefixes() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix(Primary4P), netip.MustParsePrefix(Primary6P),
		netip.MustParsePrefix(Second4P), netip.MustParsePrefix(Second6P)}
}

// nodeAddr is node i's (1-based) address on its link to the router.
func nodeAddr(i int, v6 bool) netip.Addr {
	if v6 {
		return netip.MustParseAddr(fmt.Sprintf("fd80:%d::2", i))
	}
	return netip.MustParseAddr(fmt.Sprintf("10.80.%d.2", i))
}

// routerAddr is the router's address towards node i; host 1 is BIRD's,
// host 4 gobgpd's.
func routerAddr(i, host int, v6 bool) netip.Addr {
	if v6 {
		return netip.MustParseAddr(fmt.Sprintf("fd80:%d::%d", i, host))
	}
	return netip.MustParseAddr(fmt.Sprintf("10.80.%d.%d", i, host))
}

// zoneText is the zone every node serves; the canary asks its SOA.
const zoneText = `$ORIGIN example.test.
$TTL 300
@    IN SOA ns1 hostmaster 2026010101 3600 900 1209600 300
     IN NS  ns1
ns1  IN A    10.53.0.53
     IN AAAA fd53::53
www  IN A    192.0.2.80
`

// nodeConfig is node i's config document.
func (l *Lab) nodeConfig(n *Node) string {
	i := n.Index
	bfd := ""
	if n.BFD {
		bfd = "\n      bfd: {enabled: true, min_tx: 100ms, min_rx: 100ms, multiplier: 3}"
	}
	hold := fmt.Sprintf("%ds", int(l.opts.HoldTime/time.Second))
	return fmt.Sprintf(`node:
  name: %[1]s
  location: Shoestring lab
data_dir: %[2]s
dns:
  listen: ["%[3]s:53", "[%[4]s]:53", "%[5]s:53", "[%[6]s]:53"]
  nsid: %[1]s
management:
  listen: %[7]s
zones:
  - origin: %[8]s
    file: %[9]s
network:
  links:
    - name: eth0
      addresses: [%[10]s/24, %[11]s/64]
      gateway4: %[12]s
      gateway6: %[13]s
  anycast: [%[3]s, %[4]s, %[5]s, %[6]s]
bgp:
  asn: %[14]d
  router_id: %[10]s
  hold_time: %[15]s
  peers:
    - name: router-v4
      address: %[12]s
      asn: %[16]d%[17]s
    - name: router-v6
      address: %[13]s
      asn: %[16]d%[17]s
    - name: gobgp
      address: %[18]s
      port: %[19]d
      asn: %[20]d
      next_hop6: %[11]s
  prefixes:
    - prefix: %[21]s
      communities: ["65053:100"]
      large_communities: ["65053:1:2"]
    - prefix: %[22]s
      communities: ["65053:100"]
      large_communities: ["65053:1:2"]
    - prefix: %[23]s
      communities: ["65053:200"]
      prepend: 2
    - prefix: %[24]s
      communities: ["65053:200"]
      prepend: 2
health:
  canary: {name: %[8]s, type: SOA}
  drain: {wait: %[25]s, linger: %[26]s}
`, n.Name, n.DataDir, Anycast4, Anycast6, Secondary4, Secondary6, MgmtAPI, Zone, l.zoneFile,
		nodeAddr(i, false), nodeAddr(i, true), routerAddr(i, 1, false), routerAddr(i, 1, true),
		NodeASN, hold, RouterASN, bfd, routerAddr(i, 4, false), GoBGPPort, GoBGPASN,
		Primary4P, Primary6P, Second4P, Second6P, l.opts.DrainWait, l.opts.Linger)
}

// birdConfig is the router's BIRD: a passive session per node and family,
// BFD where the node runs it, multipath routes into the kernel.
func (l *Lab) birdConfig() string {
	var b strings.Builder
	hold := int(l.opts.HoldTime / time.Second)
	fmt.Fprintf(&b, `log stderr all;
router id 10.80.0.1;
protocol device { scan time 1; }
protocol kernel k4 { ipv4 { export all; import none; }; merge paths on; }
protocol kernel k6 { ipv6 { export all; import none; }; merge paths on; }
protocol bfd {
	interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}

# RFC 8326: a route tagged GRACEFUL_SHUTDOWN loses to every other path, so
# traffic leaves a draining node before its route is withdrawn.
filter from_node {
	if (65535, 0) ~ bgp_community then bgp_local_pref = 0;
	accept;
}

template bgp node {
	passive on;
	hold time %d;
	keepalive time %d;
	error wait time 1, 5;
}
`, hold, max(hold/3, 1))
	for _, n := range l.Nodes {
		bfd := "off"
		if n.BFD {
			bfd = "on"
		}
		// The local address also fixes the source of BFD packets, which
		// the node checks (the link has gobgpd's address too).
		fmt.Fprintf(&b, `protocol bgp %[1]s_v4 from node {
	local %[6]s as %[7]d;
	neighbor %[2]s as %[4]d;
	bfd %[5]s;
	ipv4 { import filter from_node; export none; };
}
protocol bgp %[1]s_v6 from node {
	local %[8]s as %[7]d;
	neighbor %[3]s as %[4]d;
	bfd %[5]s;
	ipv6 { import filter from_node; export none; };
}
`, n.Name, nodeAddr(n.Index, false), nodeAddr(n.Index, true), NodeASN, bfd,
			routerAddr(n.Index, 1, false), RouterASN, routerAddr(n.Index, 1, true))
	}
	return b.String()
}

// gobgpConfig is gobgpd beside BIRD: one passive IPv4 session per node,
// carrying both families; it only listens (exports nothing).
func (l *Lab) gobgpConfig() string {
	var b strings.Builder
	hold := int(l.opts.HoldTime / time.Second)
	fmt.Fprintf(&b, `[global.config]
  as = %d
  router-id = "10.80.0.4"
  port = %d
[global.apply-policy.config]
  default-export-policy = "reject-route"
`, GoBGPASN, GoBGPPort)
	for _, n := range l.Nodes {
		b.WriteString(refserver.GoBGPNeighbor(nodeAddr(n.Index, false).String(), NodeASN, hold))
	}
	return b.String()
}
