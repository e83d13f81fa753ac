package qemu

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/lab"
	"github.com/shoestring-dns/shoestring/test/nslab"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// anycastLab is where TestOTA's "update" box serves: a router namespace
// with BIRD putting its best route to the anycast prefix into the
// kernel, the box (QEMU on the host) reached through a link to a "vm"
// namespace, a second node (`shoestring run`) announcing the same
// prefix on its own link, and a client namespace behind the router:
//
//	client  10.77.3.2 ── 10.77.3.1 router (BIRD) 10.77.1.1 ── 10.77.1.2 vm ⇢ QEMU
//	                                            10.77.2.1 ── 10.77.2.2 second node
//
// The vm namespace is the box's wire: the test relays what reaches it
// there — BGP from BIRD to QEMU's forward of the guest's port 179, DNS
// to the anycast address to QEMU's forward of the guest's port 53 — so
// that BIRD's choice of route decides which node answers. The box's
// next hop (its own 10.0.2.15) resolves through a static route over that
// link. The second node prepends its AS twice: while both are up BIRD
// prefers the box, and traffic moves to the second node only when the
// box drains (GRACEFUL_SHUTDOWN: BIRD sets local preference 0) or
// withdraws.
type anycastLab struct {
	t                  *testing.T
	router, vm, second string // namespaces
	client             string
	br                 *bird
	node2              *refserver.Proc
}

const (
	anycastAddr = "10.53.0.53"
	// secondNSID is the second node's NSID; the box's is its name.
	secondNSID = "second"
)

// startAnycastLab builds the namespaces, starts BIRD and the second node,
// and relays the vm namespace's BGP and DNS to QEMU's forwards on the
// host's loopback (bgpPort to the guest's 179, dnsPort to its 53).
func startAnycastLab(t *testing.T, bgpPort, dnsPort int) *anycastLab {
	t.Helper()
	ip := testenv.RequireTool(t, "ip")
	bin := testenv.Binary(t)
	const prefix = "qota"
	nslab.RemoveStale(prefix)
	base := fmt.Sprintf("%s%d", prefix, os.Getpid())
	l := &anycastLab{t: t, router: base + "-r", vm: base + "-v", second: base + "-n", client: base + "-c"}
	t.Cleanup(func() { nslab.Remove(l.client, l.second, l.vm, l.router) })
	steps := [][]string{}
	add := func(s ...string) { steps = append(steps, s) }
	for _, ns := range []string{l.router, l.vm, l.second, l.client} {
		add("netns", "add", ns)
		add("-n", ns, "link", "set", "lo", "up")
	}
	for _, link := range []struct {
		ns, dev string
		n       int
	}{{l.vm, "r-vm", 1}, {l.second, "r-second", 2}, {l.client, "r-client", 3}} {
		add("link", "add", link.dev, "netns", l.router, "type", "veth", "peer", "name", "eth0", "netns", link.ns)
		add("-n", l.router, "link", "set", link.dev, "up")
		add("-n", l.router, "addr", "add", fmt.Sprintf("10.77.%d.1/24", link.n), "dev", link.dev)
		if link.ns != l.second { // the node numbers its own link
			add("-n", link.ns, "link", "set", "eth0", "up")
			add("-n", link.ns, "addr", "add", fmt.Sprintf("10.77.%d.2/24", link.n), "dev", "eth0")
			add("-n", link.ns, "route", "add", "default", "via", fmt.Sprintf("10.77.%d.1", link.n))
		}
	}
	add("-n", l.vm, "addr", "add", anycastAddr+"/32", "dev", "lo")
	for _, s := range steps {
		if out, err := exec.Command(ip, s...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	// The router forwards, and does not filter by reverse path (the
	// answers come from the anycast address).
	if err := nslab.InNS(l.router, func() error {
		for _, k := range []string{"net/ipv4/ip_forward"} {
			if err := os.WriteFile("/proc/sys/"+k, []byte("1"), 0o644); err != nil {
				return err
			}
		}
		for _, k := range []string{"net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter"} {
			if err := os.WriteFile("/proc/sys/"+k, []byte("0"), 0o644); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("router sysctls: %v", err)
	}

	dir := t.TempDir()
	l.br = &bird{refserver.StartBIRD(t, refserver.BIRDConfig{Config: anycastBIRD, Dir: dir,
		Prefix: []string{ip, "netns", "exec", l.router}, LogFile: filepath.Join(dir, "bird.log")})}
	l.relayBGP(bgpPort)
	l.relayDNS(dnsPort)

	zone := filepath.Join(dir, "example.test.zone")
	cfg := filepath.Join(dir, "second.yaml")
	if err := os.WriteFile(zone, []byte(zoneText), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(secondNodeYAML, filepath.Join(dir, "second-data"), zone)), 0o644); err != nil {
		t.Fatal(err)
	}
	l.node2 = refserver.Run(t, refserver.Command{Name: "second node", Argv: []string{bin, "run", "-config", cfg},
		Prefix: []string{ip, "netns", "exec", l.second}, LogFile: filepath.Join(dir, "second.log")})
	return l
}

// anycastBIRD: the box multihop (through the relay), the second node on
// its link, the best route to the anycast prefix into the kernel.
const anycastBIRD = `log stderr all;
router id 10.77.1.1;
protocol device { scan time 1; }
# The box's next hop, its own address behind QEMU's NAT, is over the vm link.
protocol static vmlink { ipv4; route 10.0.2.15/32 via 10.77.1.2; }
protocol kernel { ipv4 { export where net = 10.53.0.0/24; import none; }; }
# RFC 8326: a route tagged GRACEFUL_SHUTDOWN loses to every other path.
filter from_node {
  if (65535, 0) ~ bgp_community then bgp_local_pref = 0;
  accept;
}
protocol bgp node {
  local 10.77.1.1 as 65000;
  neighbor 10.77.1.2 as 65053;
  multihop 2;
  hold time 30;
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 4;
  debug { states, events };
  ipv4 { import filter from_node; export none; };
}
protocol bgp second {
  local 10.77.2.1 as 65000;
  neighbor 10.77.2.2 as 65053;
  hold time 9;
  connect retry time 2;
  error wait time 1, 4;
  ipv4 { import filter from_node; export none; };
}
`

// secondNodeYAML: data dir, zone file.
const secondNodeYAML = `node:
  name: second
data_dir: %s
dns:
  listen: ["10.53.0.53:53"]
  nsid: ` + secondNSID + `
management:
  listen: 127.0.0.1:8053
zones:
  - origin: example.test
    file: %s
network:
  links:
    - name: eth0
      addresses: [10.77.2.2/24]
      gateway4: 10.77.2.1
  anycast: [10.53.0.53]
bgp:
  asn: 65053
  router_id: 10.77.2.2
  hold_time: 9s
  peers:
    - name: router
      address: 10.77.2.1
      asn: 65000
  prefixes:
    - prefix: 10.53.0.0/24
      prepend: 2
health:
  canary: {name: example.test, type: SOA}
`

// relayBGP accepts BIRD's connections on the vm namespace's 10.77.1.2:179
// and joins each to QEMU's forward of the guest's port 179.
func (l *anycastLab) relayBGP(port int) {
	var ln net.Listener
	if err := nslab.InNS(l.vm, func() (err error) {
		ln, err = net.Listen("tcp", "10.77.1.2:179")
		return err
	}); err != nil {
		l.t.Fatalf("BGP relay: %v", err)
	}
	l.t.Cleanup(func() { ln.Close() })
	go nslab.PipeTCP(ln, func() (net.Conn, error) {
		return net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	})
}

// relayDNS takes UDP queries to the anycast address in the vm namespace
// and sends each on to QEMU's forward of the guest's port 53, from one
// host socket per client socket (as a NAT would), the answers back to
// the client. It retries nothing: a query the box does not answer is
// lost.
func (l *anycastLab) relayDNS(port int) {
	var in *net.UDPConn
	if err := nslab.InNS(l.vm, func() (err error) {
		in, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(anycastAddr), Port: 53})
		return err
	}); err != nil {
		l.t.Fatalf("DNS relay: %v", err)
	}
	l.t.Cleanup(func() { in.Close() })
	guest := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	go func() {
		var mu sync.Mutex
		out := map[netip.AddrPort]*net.UDPConn{}
		defer func() {
			mu.Lock()
			for _, c := range out {
				c.Close()
			}
			mu.Unlock()
		}()
		buf := make([]byte, 4096)
		for {
			n, from, err := in.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			mu.Lock()
			c := out[from]
			if c == nil {
				if c, err = net.DialUDP("udp", nil, guest); err != nil {
					mu.Unlock()
					continue
				}
				out[from] = c
				go func() {
					b := make([]byte, 4096)
					for {
						n, err := c.Read(b)
						if err != nil {
							if ne, ok := err.(net.Error); ok && ne.Timeout() {
								continue
							}
							if strings.Contains(err.Error(), "closed") {
								return
							}
							continue // ECONNREFUSED while QEMU is down
						}
						in.WriteToUDPAddrPort(b[:n], from)
					}
				}()
			}
			mu.Unlock()
			c.Write(buf[:n])
		}
	}()
}

// secondUp waits until the second node's route is at BIRD.
func (l *anycastLab) secondUp(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := l.br.birdc("show", "route", "protocol", "second")
		if err == nil && strings.Contains(out, "10.53.0.0/24") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("BIRD has no route from the second node after %s:\n%s\n%s", timeout, out, l.node2.Tail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// queryTimeout is how long an answer may take before the query counts
// as lost. Generous: the box is an emulated CPU that is, during the
// install, also receiving the bundle through its userspace WireGuard.
const queryTimeout = 2 * time.Second

// startLoad sends queries for www.example.test A to the anycast address
// from the client namespace at qps a second, each on whichever of the
// client's sockets is free (lab.Client), until stopped.
func (l *anycastLab) startLoad(qps, sockets int) *lab.Load {
	l.t.Helper()
	c, err := lab.NewClientIn(l.client, sockets, netip.MustParseAddr(anycastAddr))
	if err != nil {
		l.t.Fatalf("client sockets: %v", err)
	}
	l.t.Cleanup(c.Close)
	c.Timeout = queryTimeout
	return c.StartLoad(qps)
}

// answeredBy counts the queries sent in [from, to) that nsid answered.
func answeredBy(rs []lab.Result, nsid string, from, to time.Time) int {
	n := 0
	for _, r := range rs {
		if r.Err == nil && r.NSID == nsid && !r.Sent.Before(from) && r.Sent.Before(to) {
			n++
		}
	}
	return n
}

// loadFigures sums a load up: total, failed (with the first few), the
// longest time between two answered queries, the slowest answer.
type loadFigures struct {
	total, failed int
	longestGap    time.Duration
	gapAt         time.Time
	slowest       time.Duration
	by            map[string]int
	firstFailures []string
}

func sumLoad(rs []lab.Result) loadFigures {
	f := loadFigures{total: len(rs), by: map[string]int{}}
	var last time.Time
	for _, r := range rs {
		if r.Err != nil {
			f.failed++
			if len(f.firstFailures) < 5 {
				f.firstFailures = append(f.firstFailures, fmt.Sprintf("%s: %v", r.Sent.Format("15:04:05.000"), r.Err))
			}
			continue
		}
		f.by[r.NSID]++
		if d := r.Done.Sub(r.Sent); d > f.slowest {
			f.slowest = d
		}
		if !last.IsZero() && r.Sent.Sub(last) > f.longestGap {
			f.longestGap, f.gapAt = r.Sent.Sub(last), last
		}
		last = r.Sent
	}
	return f
}
