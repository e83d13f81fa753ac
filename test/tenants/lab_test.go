package tenants

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/tenant"
	"github.com/shoestring-dns/shoestring/test/nslab"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

func TestMain(m *testing.M) { os.Exit(nslab.Main(m, "sstnt")) }

// The lab: the host runs in the speaker namespace (the test's), BIRD in
// the peer namespace, where it installs the routes it learns into the
// kernel, so that a client there reaches a tenant's address only while
// the host announces the tenant's prefix.
const birdConf = `log stderr all;
router id ` + nslab.PeerIP4 + `;
protocol device { scan time 1; }
protocol kernel { ipv4 { export all; }; }
protocol bgp host4 {
	local ` + nslab.PeerIP4 + ` as 65001;
	neighbor ` + nslab.SpeakerIP4 + ` as 65000;
	passive on;
	hold time 9;
	ipv4 { import all; export none; };
}
`

// lab is one host and its BIRD peer.
type lab struct {
	t      *testing.T
	nslab  *nslab.Lab
	bird   *refserver.Bird
	bin    string
	dir    string
	api    string
	cgroup string
	host   *exec.Cmd
	// outside is the machine's root as seen from the lab: /sys there
	// holds the cgroup hierarchies (ours is the lab's own sysfs).
	outside string
	log     *testenv.SyncBuffer
}

// tenantDef is one tenant of the tests.
type tenantDef struct {
	name, prefix, addr, zone string
	extra                    []string
}

func (d tenantDef) zoneText() string {
	return fmt.Sprintf("$ORIGIN %s.\n$TTL 300\n@ IN SOA ns1 host 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A %s\nwww IN TXT \"%s\"\n", d.zone, d.addr, d.name)
}

var defs = []tenantDef{
	{name: "de", prefix: "192.0.2.0/24", addr: "192.0.2.53", zone: "de.test"},
	// nic in a network namespace of its own: it answers on the sockets
	// the host passed, and can reach nothing else.
	{name: "nic", prefix: "198.51.100.0/24", addr: "198.51.100.53", zone: "nic.test", extra: []string{"-netns"}},
	{name: "enum", prefix: "203.0.113.0/24", addr: "203.0.113.53", zone: "enum.test", extra: []string{"-memory", "64M", "-cpu", "1", "-cpuset", "0"}},
}

func startLab(t *testing.T) *lab {
	l := &lab{t: t, nslab: nslab.Require(t), bin: testenv.Binary(t), dir: t.TempDir()}
	testenv.RequireTool(t, "nsenter")
	testenv.RequireTool(t, "dig")
	l.bird = l.nslab.StartBIRD(t, birdConf)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.api = ln.Addr().String()
	ln.Close()
	l.cgroup = fmt.Sprintf("shoestring-test-%d", os.Getpid())
	cfg := fmt.Sprintf(`node: {name: host1}
data_dir: %s
management: {listen: "%s"}
bgp:
  asn: 65000
  router_id: %s
  peers:
    - {name: bird, address: %s, asn: 65001, hold_time: 9s}
health:
  drain: {wait: 1s, linger: 0s}
tenants:
  cgroup: %s
  udp_sockets: 2
  # hog (memory test) is pinned to core 1 and enum to 0: what the host
  # does for hog stays on hog's core.
  host_cpuset: "1"
`, l.dir, l.api, nslab.SpeakerIP4, nslab.PeerIP4, l.cgroup)
	path := filepath.Join(l.dir, "host.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// `ip netns exec`, which put this test in the lab, mounts a fresh
	// /sys in a mount namespace of its own, hiding the cgroup
	// hierarchies. The host runs as on a server: in the machine's mount
	// namespace (its cgroups: the one of nslab.Main, which ran `ip netns
	// exec`, our parent), in the lab's network namespace.
	mnt := fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid())
	if a, b := readlink(mnt), readlink("/proc/self/ns/mnt"); a == b || a == "" {
		t.Fatalf("the mount namespace outside the lab is not our parent's (%q, ours %q)", a, b)
	}
	l.outside = fmt.Sprintf("/proc/%d/root", os.Getppid())
	l.log = &testenv.SyncBuffer{}
	l.host = exec.Command("nsenter", "--net=/proc/self/ns/net", "--mount="+mnt, "--", l.bin, "host", "-config", path)
	l.host.Stdout, l.host.Stderr = l.log, l.log
	if err := l.host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.host.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { l.host.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			l.host.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("host log:\n%s", l.log.String())
		}
		removeCgroups(l.outside, l.cgroup)
	})
	l.eventually(10*time.Second, "BGP session established", func() bool {
		return strings.Contains(l.bird.Cmd(t, "show", "protocols", "host4"), "Established")
	})
	return l
}

func readlink(p string) string {
	s, _ := os.Readlink(p)
	return s
}

// removeCgroups removes the test's parent cgroups (the host leaves them
// for its next start).
func removeCgroups(root, name string) {
	matches, _ := filepath.Glob(root + "/sys/fs/cgroup/*/" + name)
	more, _ := filepath.Glob(root + "/sys/fs/cgroup/*/*/*/" + name)
	for _, d := range append(matches, more...) {
		os.Remove(d)
	}
}

func (l *lab) eventually(d time.Duration, what string, ok func() bool) time.Duration {
	l.t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			l.t.Fatalf("%s: not after %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// ctl runs `shoestring ctl` against the host.
func (l *lab) ctl(args ...string) (string, error) {
	cmd := exec.Command(l.bin, append([]string{"ctl", "-api", l.api}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *lab) mustCtl(args ...string) string {
	l.t.Helper()
	out, err := l.ctl(args...)
	if err != nil {
		l.t.Fatalf("ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (l *lab) add(d tenantDef) {
	l.t.Helper()
	zf := filepath.Join(l.dir, d.zone+".zone")
	if err := os.WriteFile(zf, []byte(d.zoneText()), 0o600); err != nil {
		l.t.Fatal(err)
	}
	l.mustCtl(append([]string{"tenant", "add", d.name, "-prefix", d.prefix, "-address", d.addr, "-zone", d.zone + "=" + zf}, d.extra...)...)
}

func (l *lab) status(name string) tenant.Status {
	l.t.Helper()
	var st tenant.Status
	out := l.mustCtl("-json", "tenant", "show", name)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		l.t.Fatalf("tenant show %s: %v\n%s", name, err, out)
	}
	return st
}

// checkNetwork checks a tenant's network stack, as the kernel sees the
// process and as it reported itself: its own (own) or the host's.
func (l *lab) checkNetwork(t *testing.T, st tenant.Status, own bool) {
	t.Helper()
	hostNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", l.host.Process.Pid))
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", st.PID))
	p := st.Protections
	if p == nil {
		t.Errorf("%s reported no protections", st.Name)
	} else if err != nil || (ns != hostNS) != own || p.OwnNetwork != own || p.WantNetwork != own {
		t.Errorf("%s: network namespace %s (host %s, err %v), sees only loopback %v; want its own: %v", st.Name, ns, hostNS, err, p.OwnNetwork, own)
	}
}

// apiStatus is a tenant's status through the API, from this process (no
// ctl process started: cheap enough to poll while latency is measured).
// A tenant that does not exist has the zero status.
func (l *lab) apiStatus(name string) tenant.Status {
	var st tenant.Status
	resp, err := http.Get("http://" + l.api + "/api/v1/tenants/" + name)
	if err != nil {
		l.t.Fatalf("tenant %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		json.NewDecoder(resp.Body).Decode(&st)
	}
	return st
}

// routes are BIRD's routes from the host: prefix → the route's text
// (with the time it was learnt, so a route that was withdrawn and
// announced again differs).
func (l *lab) routes() map[string]string {
	out, err := l.bird.Birdc("show", "route", "protocol", "host4")
	if err != nil {
		l.t.Fatalf("birdc: %v\n%s", err, out)
	}
	rs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.Contains(f[0], "/") {
			rs[f[0]] = strings.TrimSpace(line)
		}
	}
	return rs
}

// birdSince is the time in BIRD's "[protocol HH:MM:SS.mmm]" of a route.
var birdSince = regexp.MustCompile(`\[(\S+) (\d\d:\d\d:\d\d\.\d{3})\]`)

// sameRoute tells whether two of BIRD's texts of a route (routes or
// routeDetails) are the same route, learnt at the same time: BIRD prints
// the time it learnt a route by converting its monotonic clock to the
// wall clock at each `show`, so one route's time differs by a
// millisecond between two calls. A route learnt again (an UPDATE) moves
// by far more.
func sameRoute(a, b string) bool {
	ma, mb := birdSince.FindStringSubmatchIndex(a), birdSince.FindStringSubmatchIndex(b)
	if ma == nil || mb == nil {
		return a == b
	}
	if a[:ma[4]] != b[:mb[4]] || a[ma[5]:] != b[mb[5]:] {
		return false
	}
	ta, err1 := time.Parse("15:04:05.000", a[ma[4]:ma[5]])
	tb, err2 := time.Parse("15:04:05.000", b[mb[4]:mb[5]])
	d := ta.Sub(tb)
	return err1 == nil && err2 == nil && d <= 5*time.Millisecond && d >= -5*time.Millisecond
}

// routeDetails are BIRD's routes from the host with their attributes
// (`show route all`): prefix → the route's block, communities included.
func (l *lab) routeDetails() map[string]string {
	out, err := l.bird.Birdc("show", "route", "all", "protocol", "host4")
	if err != nil {
		l.t.Fatalf("birdc: %v\n%s", err, out)
	}
	rs := map[string]string{}
	cur := ""
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case line[0] != ' ' && line[0] != '\t' && strings.Contains(f[0], "/"):
			cur = f[0]
			rs[cur] = strings.TrimSpace(line)
		case cur != "" && (line[0] == ' ' || line[0] == '\t'):
			rs[cur] += "\n" + strings.TrimSpace(line)
		default:
			cur = ""
		}
	}
	return rs
}

// query asks, from BIRD's namespace (through the routes it learnt), for
// the tenant's www TXT and returns the answer.
func (l *lab) query(d tenantDef) string {
	out, _ := l.nslab.Exec("dig", "+short", "+time=1", "+tries=1", "@"+d.addr, "www."+d.zone, "TXT")
	return strings.Trim(strings.TrimSpace(out), `"`)
}

// answered says whether the tenant answers through BIRD with its own
// data and BIRD has its prefix.
func (l *lab) answered(d tenantDef) bool {
	_, routed := l.routes()[d.prefix]
	return routed && l.query(d) == d.name
}

// snapshot is what the machine looks like from the host's side, to
// compare before a tenant is added and after it is removed.
type snapshot struct {
	mounts, cgroups, addrs, routes, bird string
}

func (l *lab) snapshot() snapshot {
	l.t.Helper()
	var s snapshot
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", l.hostPID()))
	if err != nil {
		l.t.Fatal(err)
	}
	// Network namespaces pinned under /run/netns come and go with other
	// tests on the machine (this lab's own among them); a tenant makes
	// none.
	var mounts []string
	for _, m := range strings.Split(string(mi), "\n") {
		if !strings.Contains(m, " - nsfs ") {
			mounts = append(mounts, m)
		}
	}
	s.mounts = strings.Join(mounts, "\n")
	var dirs []string
	filepath.WalkDir(l.outside+"/sys/fs/cgroup", func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() && strings.Contains(p, l.cgroup) {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Strings(dirs)
	if len(dirs) == 0 {
		l.t.Fatalf("no cgroup %s under %s/sys/fs/cgroup: the comparison would prove nothing", l.cgroup, l.outside)
	}
	s.cgroups = strings.Join(dirs, "\n")
	a, _ := exec.Command("ip", "-o", "addr", "show", "dev", "lo").CombinedOutput()
	s.addrs = string(a)
	r, _ := exec.Command("ip", "route", "show", "table", "all").CombinedOutput()
	s.routes = string(r)
	rs := l.routes()
	keys := make([]string, 0, len(rs))
	for k := range rs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s.bird = strings.Join(keys, " ")
	return s
}

// hostPID is the host's process (nsenter execs it in place).
func (l *lab) hostPID() int { return l.host.Process.Pid }

func diffSnapshots(t *testing.T, before, after snapshot) {
	t.Helper()
	for _, c := range []struct{ what, a, b string }{
		{"mounts", before.mounts, after.mounts}, {"cgroups", before.cgroups, after.cgroups},
		{"addresses on lo", before.addrs, after.addrs}, {"routes", before.routes, after.routes},
		{"BIRD's routes", before.bird, after.bird},
	} {
		if c.a != c.b {
			t.Errorf("%s differ after remove:\nbefore:\n%s\nafter:\n%s", c.what, c.a, c.b)
		}
	}
}

// procStatus reads fields of /proc/PID/status, as the kernel sees the
// process (not as it reports itself).
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(l, []byte(":"))
		if ok {
			out[string(k)] = strings.TrimSpace(string(v))
		}
	}
	return out
}

func sortedNames(ents []os.DirEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}
