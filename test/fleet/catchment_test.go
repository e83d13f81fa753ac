package fleet

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/cmd/fleet/catchment"
	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/test/nslab"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// The catchment lab: two sites, each a BIRD router (AS 6500x) with one
// node announcing the anycast prefix 10.53.0.53/32 and one client behind
// it; the routers are eBGP peers, so each prefers its own node and falls
// back to the other site's when its node withdraws.
//
//	client ca  10.81.10.2 10.81.11.2 ── ra ── node a (10.81.1.2, lo 10.53.0.53)
//	                                    │ 10.80.0.1
//	                                    │ 10.80.0.2
//	client cb  10.82.10.2 10.82.11.2 ── rb ── node b (10.82.1.2, lo 10.53.0.53)
const catchAnycast = "10.53.0.53"

type catchSite struct {
	name, router, client, node string // namespaces
	i                          int    // 1 or 2: 10.8<i>.…
	asn                        int
}

func (s catchSite) net(host string) string { return fmt.Sprintf("10.8%d.%s", s.i, host) }

// extraTargets is how many more addresses each client has, in a third
// /24, for a measurement of more than a handful of targets.
const extraTargets = 50

// targets are the client's addresses: one in each of two /24s, and
// extraTargets in a third.
func (s catchSite) targets() []string {
	out := []string{s.net("10.2"), s.net("11.2")}
	for h := 1; h <= extraTargets; h++ {
		out = append(out, s.net(fmt.Sprintf("12.%d", h)))
	}
	return out
}

func catchNodeConfig(s catchSite, dir, zoneFile string) string {
	return fmt.Sprintf(`node:
  name: %[1]s
data_dir: %[2]s
dns:
  listen: ["%[3]s:53"]
  nsid: %[1]s
management:
  listen: 127.0.0.1:8053
zones:
  - origin: catch.test
    file: %[4]s
network:
  links:
    - name: eth0
      addresses: [%[5]s/24]
      gateway4: %[6]s
  anycast: [%[3]s]
bgp:
  asn: 65053
  router_id: %[5]s
  hold_time: 9s
  peers:
    - name: router
      address: %[6]s
      asn: %[7]d
  prefixes:
    - prefix: %[3]s/32
health:
  canary: {name: catch.test, type: SOA}
  rise: 2
  drain: {wait: 1s, linger: 0s}
catchment:
  rate: 200
`, s.name, dir, catchAnycast, zoneFile, s.net("1.2"), s.net("1.1"), s.asn)
}

func catchBIRDConfig(s, other catchSite) string {
	return fmt.Sprintf(`log stderr all;
router id %[1]s;
protocol device { scan time 1; }
protocol kernel { ipv4 { export all; import none; }; }
protocol bgp node {
	local %[1]s as %[2]d;
	neighbor %[3]s as 65053;
	passive on;
	hold time 9; keepalive time 3;
	error wait time 1, 5;
	ipv4 { import all; export none; };
}
protocol bgp site {
	local %[4]s as %[2]d;
	neighbor %[5]s as %[6]d;
	hold time 9; keepalive time 3;
	connect retry time 1;
	error wait time 1, 5;
	ipv4 { import all; export where proto = "node"; };
}
`, s.net("1.1"), s.asn, s.net("1.2"), fmt.Sprintf("10.80.0.%d", s.i), fmt.Sprintf("10.80.0.%d", other.i), other.asn)
}

// TestCatchmentTwoSites: a measurement maps each client prefix to the
// node of its site (replies to probes sent from the anycast address by
// one node reach the other node through real routing); after site b
// drains, a second measurement maps every prefix to a, and the diff
// says which moved. Each client's first address also runs a DNS server,
// so the DNS probes are routed the same way.
func TestCatchmentTwoSites(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tool := range []string{"ip", "bird", "birdc"} {
		testenv.RequireTool(t, tool)
	}
	bin := testenv.Binary(t)
	fleetBinary(t) // built first: the figures below are the lab's own
	ip := testenv.RequireTool(t, "ip")
	start := time.Now()
	nslab.RemoveStale("sc")
	pfx := fmt.Sprintf("sc%d", os.Getpid())
	sites := []catchSite{{name: "a", i: 1, asn: 65001}, {name: "b", i: 2, asn: 65002}}
	var all []string
	for k := range sites {
		s := &sites[k]
		s.router, s.client, s.node = pfx+"-r"+s.name, pfx+"-c"+s.name, pfx+"-n"+s.name
		all = append(all, s.router, s.client, s.node)
	}
	t.Cleanup(func() { nslab.Remove(all...) })
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range all {
		run("netns", "add", ns)
		run("-n", ns, "link", "set", "lo", "up")
	}
	a, b := sites[0], sites[1]
	run("link", "add", "rsite", "netns", a.router, "type", "veth", "peer", "name", "rsite", "netns", b.router)
	for _, s := range sites {
		run("-n", s.router, "addr", "add", fmt.Sprintf("10.80.0.%d/24", s.i), "dev", "rsite")
		run("-n", s.router, "link", "set", "rsite", "up")
		run("link", "add", "rnode", "netns", s.router, "type", "veth", "peer", "name", "eth0", "netns", s.node)
		run("-n", s.router, "addr", "add", s.net("1.1/24"), "dev", "rnode")
		run("-n", s.router, "link", "set", "rnode", "up")
		run("link", "add", "rclient", "netns", s.router, "type", "veth", "peer", "name", "eth0", "netns", s.client)
		run("-n", s.router, "addr", "add", s.net("10.1/24"), "dev", "rclient")
		run("-n", s.router, "addr", "add", s.net("11.1/24"), "dev", "rclient")
		run("-n", s.router, "addr", "add", s.net("12.254/24"), "dev", "rclient")
		run("-n", s.router, "link", "set", "rclient", "up")
		var batch strings.Builder
		for _, a := range s.targets() {
			fmt.Fprintf(&batch, "addr add %s/24 dev eth0\n", a)
		}
		cmd := exec.Command(ip, "-n", s.client, "-batch", "-")
		cmd.Stdin = strings.NewReader(batch.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("client %s addresses: %v: %s", s.name, err, out)
		}
		run("-n", s.client, "link", "set", "eth0", "up")
		run("-n", s.client, "route", "add", "default", "via", s.net("10.1"))
		other := sites[2-s.i]
		run("-n", s.router, "route", "add", fmt.Sprintf("10.8%d.0.0/16", other.i), "via", fmt.Sprintf("10.80.0.%d", other.i))
		// The router forwards, and does not filter by reverse path: the
		// probes come from the anycast address, whose route points
		// elsewhere.
		if err := nslab.InNS(s.router, func() error {
			for _, k := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter",
				"net/ipv4/conf/rsite/rp_filter", "net/ipv4/conf/rnode/rp_filter", "net/ipv4/conf/rclient/rp_filter"} {
				v := "0"
				if k == "net/ipv4/ip_forward" {
					v = "1"
				}
				if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
					return fmt.Errorf("%s: %w", k, err)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "catch.test.zone")
	os.WriteFile(zoneFile, []byte("$TTL 60\n@ IN SOA ns1 h 1 3600 900 1209600 60\n@ IN NS ns1\nns1 IN A 10.53.0.53\n"), 0o644)
	birds := map[string]*refserver.Bird{}
	l := &lab{t: t, dir: dir}
	nodeProcs := map[string]*refserver.Proc{}
	for _, s := range sites {
		birds[s.name] = refserver.StartBIRD(t, refserver.BIRDConfig{Config: catchBIRDConfig(s, sites[2-s.i]), Prefix: []string{ip, "netns", "exec", s.router}})
		cfg := filepath.Join(dir, s.name+".yaml")
		os.WriteFile(cfg, []byte(catchNodeConfig(s, filepath.Join(dir, s.name), zoneFile)), 0o644)
		nodeProcs[s.name] = refserver.Run(t, refserver.Command{Name: "node " + s.name, Argv: []string{bin, "run", "-config", cfg}, Prefix: []string{ip, "netns", "exec", s.node}})
		l.nodes = append(l.nodes, inventory.Node{Name: s.name, Site: "site-" + s.name, Region: "eu",
			API: forwardTCP(t, s.node, "127.0.0.1:8053"), DNS: forwardUDP(t, s.node, catchAnycast+":53")})
	}
	t.Cleanup(func() {
		if t.Failed() {
			for n, p := range nodeProcs {
				t.Logf("node %s (tail):\n%s", n, p.Tail(30))
			}
			for n, b := range birds {
				out, _ := b.Birdc("show", "route", "all")
				t.Logf("BIRD %s routes:\n%s\nlog:\n%s", n, out, b.Tail(20))
			}
		}
	})
	// Each router reaches the anycast address through the given next hop.
	route := func(s catchSite) string {
		out, _ := exec.Command(ip, "-n", s.router, "route", "show", catchAnycast).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	waitRoutes := func(what string, want map[string]string) {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for {
			ok := true
			for _, s := range sites {
				if !strings.Contains(route(s), "via "+want[s.name]+" ") {
					ok = false
				}
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: routes to %s: ra %q, rb %q", what, catchAnycast, route(a), route(b))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Each client's first address runs a DNS server (a dev node: it
	// answers the probes' names REFUSED), for the DNS probes.
	for _, s := range sites {
		addr := s.net("10.2") + ":53"
		refserver.Run(t, refserver.Command{Name: "dns " + s.client, Prefix: []string{ip, "netns", "exec", s.client},
			Argv: []string{bin, "dev", "-data", filepath.Join(dir, "dns-"+s.name), "-listen", addr, "-http", "127.0.0.1:8053"}})
		deadline := time.Now().Add(20 * time.Second)
		for {
			err := nslab.InNS(s.client, func() error {
				q := new(dns.Msg)
				q.SetQuestion("example.", dns.TypeSOA)
				_, _, err := (&dns.Client{Timeout: 300 * time.Millisecond}).Exchange(q, addr)
				return err
			})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("DNS server on %s: %v", addr, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitRoutes("each site reaches its own node", map[string]string{"a": a.net("1.2"), "b": b.net("1.2")})
	labUp := time.Since(start)

	// The controller, with both nodes in its inventory.
	l.url = fmt.Sprintf("http://127.0.0.1:%d", refserver.Port(t))
	l.ctlArgs = []string{"serve", "-store", filepath.Join(dir, "fleet.db"), "-listen", strings.TrimPrefix(l.url, "http://"), "-poll", "500ms"}
	l.startController()
	t.Cleanup(func() {
		l.ctl.Process.Kill()
		l.ctl.Wait()
		if t.Failed() {
			t.Logf("controller log:\n%s", tail(l.ctlLog.String(), 40))
		}
	})
	for _, n := range l.nodes {
		l.post("/api/nodes", n, nil)
	}
	// Listed targets: both clients' addresses, and one address on b's
	// client link where nothing answers.
	silent := b.net("10.99")
	targets := append(append(a.targets(), b.targets()...), silent)
	measure := func(senders ...string) *catchment.Measurement {
		t.Helper()
		var m catchment.Measurement
		l.post("/api/catchment", catchment.Request{Targets: targets, Senders: senders, Linger: "1s", DNS: true}, &m)
		deadline := time.Now().Add(30 * time.Second)
		for m.State == catchment.Running {
			if time.Now().After(deadline) {
				t.Fatalf("measurement %s still running after 30 s", m.ID)
			}
			time.Sleep(100 * time.Millisecond)
			l.call("GET", "/api/catchment/"+m.ID, nil, &m)
		}
		if m.State != catchment.Done || len(m.NodeErrors) > 0 {
			t.Fatalf("measurement %s: %s %s, node errors %v", m.ID, m.State, m.Error, m.NodeErrors)
		}
		return &m
	}
	check := func(m *catchment.Measurement, want map[string]string) {
		t.Helper()
		got := map[string]string{}
		for _, r := range m.Map {
			got[r.Prefix] = r.Node
			if r.Split != nil {
				t.Errorf("%s: %s split %v", m.ID, r.Prefix, r.Split)
			}
			if r.Site != "site-"+r.Node {
				t.Errorf("%s: %s site %q", m.ID, r.Prefix, r.Site)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s (senders %v): map %v, want %v", m.ID, m.Senders, got, want)
		}
		if m.Answered != len(targets)-1 || len(m.Unanswered) != 1 || m.Unanswered[0] != silent {
			t.Fatalf("%s: answered %d, unanswered %v (want %d, [%s])", m.ID, m.Answered, m.Unanswered, len(targets)-1, silent)
		}
	}
	both := map[string]string{"10.81.10.0/24": "a", "10.81.11.0/24": "a", "10.81.12.0/24": "a",
		"10.82.10.0/24": "b", "10.82.11.0/24": "b", "10.82.12.0/24": "b"}
	t0 := time.Now()
	m1 := measure() // one sender (a): b's clients still answer to b
	took1 := time.Since(t0)
	// Every target got an echo request and a DNS query; both DNS servers
	// answered, each to its own site's node (else the map splits).
	if len(m1.Senders) != 1 || m1.Senders[0] != "a" || m1.Sent != 2*len(targets) || m1.Probes["dns"] != 2 || m1.Probes["icmp"] != len(targets)-1 {
		t.Fatalf("senders %v sent %d, replies by probe %v", m1.Senders, m1.Sent, m1.Probes)
	}
	check(m1, both)
	m2 := measure("all")
	check(m2, both)
	if m2.Probes["icmp"] != 2*(len(targets)-1) || m2.Probes["dns"] != 4 || m2.Sent != 4*len(targets) {
		t.Fatalf("every node sent: replies %v, %d probes; want icmp %d, dns 4 and %d", m2.Probes, m2.Sent, 2*(len(targets)-1), 4*len(targets))
	}

	// Site b withdraws: its node drains (and keeps listening).
	resp, err := http.Post("http://"+l.nodes[1].API+"/api/v1/routing/drain", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("drain b: %s", resp.Status)
	}
	waitRoutes("b drained: rb reaches a through ra", map[string]string{"a": a.net("1.2"), "b": "10.80.0.1"})
	m3 := measure("b") // b sends; every reply reaches a
	check(m3, map[string]string{"10.81.10.0/24": "a", "10.81.11.0/24": "a", "10.81.12.0/24": "a",
		"10.82.10.0/24": "a", "10.82.11.0/24": "a", "10.82.12.0/24": "a"})
	if m3.Probes["dns"] != 2 {
		t.Fatalf("after the drain: replies by probe %v, want 2 DNS", m3.Probes)
	}

	var d catchment.DiffReport
	l.call("GET", "/api/catchment/diff?from="+m1.ID+"&to="+m3.ID, nil, &d)
	if d.Same != 3 || len(d.Changed) != 3 || d.Moved["b → a"] != 3 {
		t.Fatalf("diff: %+v", d)
	}
	// The CLI and the dashboard show the newest map.
	out, err := exec.Command(fleetBinary(t), "-c", l.url, "catchment", "show").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "10.82.11.0/24  a") || !strings.Contains(string(out), m3.ID) {
		t.Fatalf("catchment show: %v\n%s", err, out)
	}
	out, err = exec.Command(fleetBinary(t), "-c", l.url, "catchment", "diff").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "10.82.10.0/24  b     a") {
		t.Fatalf("catchment diff: %v\n%s", err, out)
	}
	t1 := time.Now()
	page := dashboardDOM(t, l.url+"/")
	if !strings.Contains(page, `data-id="`+m3.ID+`"`) || strings.Count(page, `data-node="a"><td>`) != 6 {
		t.Fatalf("dashboard: catchment table of %s not there:\n%s", m3.ID, page)
	}
	chromium := time.Since(t1)
	t.Logf("catchment lab up in %s; one measurement of %d targets (ICMP and DNS, one sender at 200 probes/s, linger 1 s): %s (controller side %s); every node sending: %s; dashboard in Chromium %s; test without the builds %s",
		labUp.Round(time.Millisecond), len(targets), took1.Round(time.Millisecond), m1.Took, m2.Took, chromium.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
