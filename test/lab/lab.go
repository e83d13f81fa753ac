package lab

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/test/nslab"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// Options configure a lab.
type Options struct {
	// Name prefixes the namespaces: Name-r (router), Name-c (client),
	// Name-n1… (nodes).
	Name string
	// Dir holds configs, logs, the nodes' data and BIRD's control socket.
	Dir string
	// Binary is the shoestring binary the nodes run.
	Binary string
	// Detached processes outlive the program that started them (`lab
	// up`); otherwise the kernel kills them if it dies.
	Detached bool
	// HoldTime of every BGP session (default 9 s, keepalive a third).
	HoldTime time.Duration
	// DrainWait and Linger are the nodes' drain timers (default 2 s, 1 s).
	DrainWait, Linger time.Duration
	// Log receives progress messages; nil discards them.
	Log io.Writer
	// Nodes is how many nodes the lab has (default NodeCount, at most
	// 99); nodes 1 and 2 run BFD.
	Nodes int
}

// Lab is a running lab.
type Lab struct {
	opts     Options
	RouterNS string
	ClientNS string
	Nodes    []*Node
	BIRD     *Proc
	GoBGP    *Proc
	BirdSock string
	bird     *refserver.Bird
	gobgp    *refserver.GoBGP
	zoneFile string
	tools    map[string]string
	routes   *routeWatcher
}

// Node is one Shoestring node.
type Node struct {
	Name   string // n1, n2, n3: also its NSID
	Index  int    // 1-based
	NS     string
	BFD    bool
	Addr4  netip.Addr // on its link to the router
	Addr6  netip.Addr
	Config string // path of its config file
	// DataDir is its store; it survives restarts.
	DataDir string
	Proc    *Proc
	lab     *Lab
}

// NodeCount is the number of nodes unless Options.Nodes says otherwise.
const NodeCount = 3

// Up builds the namespaces and links and starts BIRD, gobgpd and the
// nodes. It does not wait for BGP to converge (WaitConverged does). On
// failure it tears down whatever it built.
func Up(opts Options) (l *Lab, err error) {
	if opts.HoldTime == 0 {
		opts.HoldTime = 9 * time.Second
	}
	if opts.DrainWait == 0 {
		opts.DrainWait = 2 * time.Second
	}
	if opts.Linger == 0 {
		opts.Linger = time.Second
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Nodes == 0 {
		opts.Nodes = NodeCount
	}
	if opts.Nodes < 1 || opts.Nodes > 99 {
		return nil, fmt.Errorf("lab: %d nodes; 1 to 99", opts.Nodes)
	}
	l = &Lab{opts: opts, RouterNS: opts.Name + "-r", ClientNS: opts.Name + "-c", tools: map[string]string{}}
	for _, t := range []string{"ip", "bird", "birdc", "gobgpd", "gobgp"} {
		p, err := testenv.LookTool(t)
		if err != nil {
			return nil, err
		}
		l.tools[t] = p
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Down()
			l = nil
		}
	}()
	for i := 1; i <= opts.Nodes; i++ {
		n := &Node{
			Name: fmt.Sprintf("n%d", i), Index: i, NS: fmt.Sprintf("%s-n%d", opts.Name, i),
			BFD: i <= 2, Addr4: nodeAddr(i, false), Addr6: nodeAddr(i, true), lab: l,
		}
		n.DataDir = filepath.Join(opts.Dir, n.Name)
		n.Config = filepath.Join(opts.Dir, n.Name+".yaml")
		l.Nodes = append(l.Nodes, n)
	}
	fmt.Fprintf(opts.Log, "lab: namespaces %s, %s, %s-n1..%d\n", l.RouterNS, l.ClientNS, opts.Name, opts.Nodes)
	if err := l.network(); err != nil {
		return l, err
	}
	if l.routes, err = newRouteWatcher(l.RouterNS); err != nil {
		return l, err
	}
	l.zoneFile = filepath.Join(opts.Dir, "example.test.zone")
	if err := os.WriteFile(l.zoneFile, []byte(zoneText), 0o644); err != nil {
		return l, err
	}
	if err := l.startRouter(); err != nil {
		return l, err
	}
	for _, n := range l.Nodes {
		if err := os.WriteFile(n.Config, []byte(l.nodeConfig(n)), 0o644); err != nil {
			return l, err
		}
		if err := n.Start(); err != nil {
			return l, err
		}
	}
	return l, nil
}

// ip runs ip(8).
func (l *Lab) ip(args ...string) error {
	out, err := exec.Command(l.tools["ip"], args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// network builds the namespaces and links, and numbers the router's and
// client's ends; the nodes number their own (network section).
func (l *Lab) network() error {
	var steps [][]string
	add := func(s ...string) { steps = append(steps, s) }
	add("netns", "add", l.RouterNS)
	add("netns", "add", l.ClientNS)
	for _, n := range l.Nodes {
		add("netns", "add", n.NS)
	}
	for _, ns := range []string{l.RouterNS, l.ClientNS} {
		add("-n", ns, "link", "set", "lo", "up")
	}
	for _, n := range l.Nodes {
		dev := "r-" + n.Name
		add("link", "add", dev, "netns", l.RouterNS, "type", "veth", "peer", "name", "eth0", "netns", n.NS)
		add("-n", l.RouterNS, "link", "set", dev, "up")
		for _, host := range []int{1, 4} {
			add("-n", l.RouterNS, "addr", "add", routerAddr(n.Index, host, false).String()+"/24", "dev", dev)
			// nodad: usable at once; the node's side does duplicate
			// detection as a real box would.
			add("-n", l.RouterNS, "addr", "add", routerAddr(n.Index, host, true).String()+"/64", "dev", dev, "nodad")
		}
	}
	add("link", "add", "r-c", "netns", l.RouterNS, "type", "veth", "peer", "name", "eth0", "netns", l.ClientNS)
	add("-n", l.RouterNS, "link", "set", "r-c", "up")
	add("-n", l.RouterNS, "addr", "add", "10.80.100.1/24", "dev", "r-c")
	add("-n", l.RouterNS, "addr", "add", "fd80:100::1/64", "dev", "r-c", "nodad")
	add("-n", l.ClientNS, "link", "set", "eth0", "up")
	add("-n", l.ClientNS, "addr", "add", ClientIP4+"/24", "dev", "eth0")
	add("-n", l.ClientNS, "addr", "add", ClientIP6+"/64", "dev", "eth0", "nodad")
	add("-n", l.ClientNS, "route", "add", "default", "via", "10.80.100.1")
	add("-n", l.ClientNS, "-6", "route", "add", "default", "via", "fd80:100::1")
	for _, s := range steps {
		if err := l.ip(s...); err != nil {
			return err
		}
	}
	// The router forwards, hashes flows by ports as well as addresses
	// (else one client would reach one node), and does not filter by
	// reverse path: replies come from anycast addresses.
	return nslab.InNS(l.RouterNS, func() error {
		for k, v := range map[string]string{
			"net/ipv4/ip_forward":                "1",
			"net/ipv6/conf/all/forwarding":       "1",
			"net/ipv4/fib_multipath_hash_policy": "1",
			"net/ipv6/fib_multipath_hash_policy": "1",
			"net/ipv4/conf/all/rp_filter":        "0",
			"net/ipv4/conf/default/rp_filter":    "0",
			// Tests take the router's end of a link down to cut a
			// node off; its IPv6 addresses must survive that.
			"net/ipv6/conf/all/keep_addr_on_down": "1",
		} {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
				return fmt.Errorf("router sysctl %s: %w", k, err)
			}
		}
		return nil
	})
}

// startRouter starts BIRD and gobgpd in the router namespace and waits
// until both take commands.
func (l *Lab) startRouter() error {
	l.BirdSock = filepath.Join(l.opts.Dir, "bird.ctl")
	var err error
	l.bird, err = refserver.BIRDConfig{Config: l.birdConfig(), Dir: l.opts.Dir, Prefix: l.in(l.RouterNS),
		LogFile: filepath.Join(l.opts.Dir, "bird.log"), Detached: l.opts.Detached}.Start()
	if err != nil {
		return err
	}
	l.BIRD = l.bird.Proc
	l.gobgp, err = refserver.GoBGPConfig{Config: l.gobgpConfig(), Dir: l.opts.Dir, Prefix: l.in(l.RouterNS),
		LogFile: filepath.Join(l.opts.Dir, "gobgpd.log"), Detached: l.opts.Detached}.Start()
	if err != nil {
		return err
	}
	l.GoBGP = l.gobgp.Proc
	return nil
}

// Birdc runs a BIRD command; the control socket is a file, reachable from
// any namespace.
func (l *Lab) Birdc(args ...string) (string, error) {
	if l.bird == nil {
		return "", errors.New("BIRD not running")
	}
	return l.bird.Birdc(args...)
}

// Gobgp runs the gobgp CLI in the router namespace, where gobgpd's API
// listens on loopback.
func (l *Lab) Gobgp(args ...string) (string, error) {
	if l.gobgp == nil {
		return "", errors.New("gobgpd not running")
	}
	return l.gobgp.CLI(args...)
}

// Nexthops returns the router's kernel next hops for p (sorted).
func (l *Lab) Nexthops(p netip.Prefix) ([]netip.Addr, error) { return l.routes.nexthops(p) }

// NodeAddrs returns the nodes' addresses of p's family, sorted: the next
// hops of a fully converged route.
func (l *Lab) NodeAddrs(p netip.Prefix, nodes ...*Node) []netip.Addr {
	if len(nodes) == 0 {
		nodes = l.Nodes
	}
	var out []netip.Addr
	for _, n := range nodes {
		if p.Addr().Is6() {
			out = append(out, n.Addr6)
		} else {
			out = append(out, n.Addr4)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// Down stops every process in the lab's namespaces and deletes them.
func (l *Lab) Down() {
	if l.routes != nil {
		l.routes.close()
	}
	names := []string{l.ClientNS}
	for _, n := range l.Nodes {
		names = append(names, n.NS)
	}
	names = append(names, l.RouterNS)
	for _, p := range l.procs() {
		p.Kill()
	}
	nslab.Remove(names...)
}

func (l *Lab) procs() []*Proc {
	var ps []*Proc
	for _, n := range l.Nodes {
		if n.Proc != nil {
			ps = append(ps, n.Proc)
		}
	}
	for _, p := range []*Proc{l.BIRD, l.GoBGP} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// RemoveNamed deletes the namespaces of the lab called name (a detached
// lab), whether or not it is complete.
func RemoveNamed(name string) {
	entries, _ := os.ReadDir("/run/netns")
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name+"-") {
			names = append(names, e.Name())
		}
	}
	nslab.Remove(names...)
}

// WaitConverged waits until the router's kernel has every prefix via all
// nodes and gobgpd has every prefix from all nodes.
func (l *Lab) WaitConverged(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		why := l.converged()
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not converged within %v: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// converged returns "" when the lab is converged, else what is missing.
func (l *Lab) converged() string {
	for _, n := range l.Nodes {
		if n.Proc == nil || n.Proc.Exited() {
			return n.Name + " is not running"
		}
	}
	for _, p := range Prefixes() {
		hops, err := l.Nexthops(p)
		if err != nil {
			return err.Error()
		}
		if want := l.NodeAddrs(p); !slices.Equal(hops, want) {
			return fmt.Sprintf("router: %v via %v, want %v", p, hops, want)
		}
	}
	rib, err := l.GoBGPRIB()
	if err != nil {
		return err.Error()
	}
	for _, p := range Prefixes() {
		if got := len(rib[p]); got != len(l.Nodes) {
			return fmt.Sprintf("gobgpd: %v has %d paths, want %d", p, got, len(l.Nodes))
		}
	}
	return ""
}
