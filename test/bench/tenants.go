package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The multi-tenant benchmark (`-tenants N`): one plain node against
// `shoestring host` with 1 and N tenants, on the same server cores.

// ParseCPUList parses a Linux CPU list ("1", "0-3", "0,2-3") into its
// cores, sorted and without repeats.
func ParseCPUList(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("CPU list %q: empty element", s)
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("CPU list %q: bad core %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("CPU list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// FormatCPUList writes cores as a CPU list ("0-2,5"), the form taskset,
// cpusets and /proc's Cpus_allowed_list use.
func FormatCPUList(cores []int) string {
	c := slices.Clone(cores)
	slices.Sort(c)
	c = slices.Compact(c)
	var parts []string
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(c[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", c[i], c[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// TenantLayout is where the multi-tenant benchmark runs things: the
// servers (the node, then the host and its tenants) on Servers, the
// dnsperf processes on Clients, never the same core.
type TenantLayout struct {
	Tenants          int
	Servers, Clients []int
}

// NewTenantLayout checks a layout: at least one tenant, both lists
// non-empty, disjoint, and every core below numCPU.
func NewTenantLayout(tenants int, servers, clients string, numCPU int) (TenantLayout, error) {
	l := TenantLayout{Tenants: tenants}
	if tenants < 1 {
		return l, fmt.Errorf("-tenants %d: want at least 1", tenants)
	}
	var err error
	if l.Servers, err = ParseCPUList(servers); err != nil {
		return l, fmt.Errorf("-tenant-cores: %w", err)
	}
	if l.Clients, err = ParseCPUList(clients); err != nil {
		return l, fmt.Errorf("-tenant-client-cores: %w", err)
	}
	for _, c := range append(slices.Clone(l.Servers), l.Clients...) {
		if c >= numCPU {
			return l, fmt.Errorf("core %d: this machine has cores 0-%d", c, numCPU-1)
		}
	}
	for _, c := range l.Servers {
		if slices.Contains(l.Clients, c) {
			return l, fmt.Errorf("core %d is in both -tenant-cores and -tenant-client-cores: dnsperf would compete with the servers", c)
		}
	}
	return l, nil
}

// Share is tenant i's (0-based) cpuset: the server cores split into
// Tenants contiguous runs as even as they go (the first ones get one
// more). With fewer cores than tenants, tenants share cores round-robin:
// tenant i gets core i mod len(Servers).
func (l TenantLayout) Share(i int) []int {
	n, k := len(l.Servers), l.Tenants
	if k > n {
		return []int{l.Servers[i%n]}
	}
	size, extra := n/k, n%k
	start := i*size + min(i, extra)
	end := start + size
	if i < extra {
		end++
	}
	return l.Servers[start:end]
}

// Client is the core of the i-th concurrent dnsperf (round-robin over
// Clients).
func (l TenantLayout) Client(i int) int { return l.Clients[i%len(l.Clients)] }

// SharedCores says whether some tenants share a core (fewer server cores
// than tenants): then a flood on one takes CPU time from the others, and
// only the kernel's fair share between their cgroups protects them.
func (l TenantLayout) SharedCores() bool { return l.Tenants > len(l.Servers) }

// Describe is the layout in one line, for the output.
func (l TenantLayout) Describe() string {
	var shares []string
	for i := range l.Tenants {
		shares = append(shares, fmt.Sprintf("t%d:%s", i+1, FormatCPUList(l.Share(i))))
	}
	return fmt.Sprintf("servers on cores %s (node; host and tenants: %s), dnsperf on cores %s",
		FormatCPUList(l.Servers), strings.Join(shares, " "), FormatCPUList(l.Clients))
}

// TenantAddr is tenant i's (0-based) service address; its prefix is
// the /24 around it.
func TenantAddr(i int) string { return fmt.Sprintf("10.53.%d.53", i+1) }

// TenantSpec is one tenant of the benchmark host.
type TenantSpec struct {
	Name, Addr, Prefix string
	CPUs               []int
}

// HostSpec is the benchmark host's config.
type HostSpec struct {
	Data, Management, Cgroup string
	Origin, ZoneFile         string
	Tenants                  []TenantSpec
}

// BenchTenants are the layout's tenants, t1 … tN.
func (l TenantLayout) BenchTenants(n int) []TenantSpec {
	var ts []TenantSpec
	for i := range n {
		a := TenantAddr(i)
		ts = append(ts, TenantSpec{Name: fmt.Sprintf("t%d", i+1), Addr: a, Prefix: strings.TrimSuffix(a, ".53") + ".0/24", CPUs: l.Share(i)})
	}
	return ts
}

// WriteHostConfig writes the host's config: no BGP (nothing to announce
// to; a 1 s drain so that it stops quickly), every tenant serving the same zone file on its own address, port
// 53, pinned by its cgroup's cpuset. No CPU or memory limit: the bench
// measures what the cores give, not a quota.
func WriteHostConfig(w io.Writer, h HostSpec) error {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {name: bench-host}\ndata_dir: %q\nmanagement: {listen: %q}\nhealth:\n  drain: {wait: 1s, linger: 0s}\ntenants:\n  cgroup: %q\n  list:\n", h.Data, h.Management, h.Cgroup)
	for _, t := range h.Tenants {
		fmt.Fprintf(&b, "    - name: %s\n      prefixes: [%s]\n      addresses: [%s]\n      zones: [{origin: %q, file: %q}]\n      cpuset: %q\n",
			t.Name, t.Prefix, t.Addr, h.Origin, h.ZoneFile, FormatCPUList(t.CPUs))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteNodeConfig writes the plain node's config (`shoestring run`): the
// same zone on listen, its management API on a free loopback port.
func WriteNodeConfig(w io.Writer, data, listen, origin, zoneFile string) error {
	_, err := fmt.Fprintf(w, "node: {name: bench-node}\ndata_dir: %q\nmanagement: {listen: \"127.0.0.1:0\"}\ndns:\n  listen: [%q]\nzones:\n  - {origin: %q, file: %q}\n",
		data, listen, origin, zoneFile)
	return err
}

// InNetns runs f on an OS thread that has entered the network namespace
// at path: sockets f opens live there. The thread goes back to its own
// namespace after. It must not die instead: a child process started
// earlier from the same thread with Pdeathsig (all of refserver's) would
// be killed with it.
func InNetns(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("own network namespace: %w", err)
			return
		}
		defer unix.Close(own)
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("network namespace %s: %w", path, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering network namespace %s: %w", path, err)
			return
		}
		err = f()
		if unix.Setns(own, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and is thrown away
		errc <- err
	}()
	return <-errc
}

// ManyRun is one measurement with several dnsperf processes at once.
type ManyRun struct {
	Run  // Perf sums the dnsperf results (QPS: the sum of each one's)
	Each []PerfResult
}

// MeasureMany runs perfs concurrently against the server tree at pid and
// charges its CPU time over the whole window to the answered queries, as
// Measure does for one. netPid is a process in the servers' network
// namespace, whose /proc/PID/net/udp holds their sockets' drop counters.
func MeasureMany(ctx context.Context, pid, netPid int, perfs []Perf, cores []int) (ManyRun, error) {
	coresBefore, _ := SampleCores(cores)
	before, err := SampleCPU(pid)
	if err != nil {
		return ManyRun{}, fmt.Errorf("reading server CPU time: %w", err)
	}
	dropsBefore := netnsDrops(netPid, perfs)
	start := time.Now()
	res := make([]PerfResult, len(perfs))
	errs := make([]error, len(perfs))
	var wg sync.WaitGroup
	for i, p := range perfs {
		wg.Go(func() { res[i], errs[i] = p.Run(ctx) })
	}
	wg.Wait()
	wall := time.Since(start)
	dropsAfter := netnsDrops(netPid, perfs)
	after, serr := SampleCPU(pid)
	coresAfter, cerr := SampleCores(cores)
	for i, err := range errs {
		if err != nil {
			return ManyRun{}, fmt.Errorf("dnsperf %d (%s): %w", i+1, perfs[i].Addr, err)
		}
	}
	if serr != nil {
		return ManyRun{}, fmt.Errorf("reading server CPU time: %w", serr)
	}
	m := ManyRun{Each: res}
	m.Perf = SumPerf(res)
	m.ServerCPU = time.Duration(after.Ticks-before.Ticks) * ClockTick
	m.Wall = wall
	m.TreeChanged = !slices.Equal(before.Pids, after.Pids)
	if dropsAfter > dropsBefore {
		m.SocketDrops = dropsAfter - dropsBefore
	}
	if cerr == nil && coresBefore.Busy > 0 {
		busy := time.Duration(coresAfter.Busy-coresBefore.Busy) * ClockTick
		m.OtherCPU = max(0, busy-m.ServerCPU-m.Perf.ClientCPU)
		m.Steal = time.Duration(coresAfter.Steal-coresBefore.Steal) * ClockTick
	}
	return m, nil
}

// SumPerf adds dnsperf results that ran at the same time: counts, rcodes,
// CPU and QPS add up; run time is the longest; response size and latency
// are weighted by answered queries.
func SumPerf(rs []PerfResult) PerfResult {
	s := PerfResult{Rcodes: map[string]int64{}}
	var size, lat float64
	for _, r := range rs {
		s.Sent += r.Sent
		s.Completed += r.Completed
		s.Lost += r.Lost
		s.QPS += r.QPS
		s.ClientCPU += r.ClientCPU
		s.RunTime = max(s.RunTime, r.RunTime)
		for k, v := range r.Rcodes {
			s.Rcodes[k] += v
		}
		size += float64(r.ResponseSize) * float64(r.Completed)
		lat += r.AvgLatency * float64(r.Completed)
	}
	if s.Completed > 0 {
		s.ResponseSize = int(size/float64(s.Completed) + 0.5)
		s.AvgLatency = lat / float64(s.Completed)
	}
	return s
}

// netnsDrops sums the UDP drop counters of the perfs' ports as seen in
// netPid's network namespace.
func netnsDrops(netPid int, perfs []Perf) uint64 {
	ports := map[int]bool{}
	for _, p := range perfs {
		ports[p.Port] = true
	}
	keys := make([]int, 0, len(ports))
	for p := range ports {
		keys = append(keys, p)
	}
	sort.Ints(keys)
	var total uint64
	for _, f := range []string{"udp", "udp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", netPid, f))
		if err != nil {
			continue
		}
		for _, p := range keys {
			total += parseSocketDrops(b, p)
		}
	}
	return total
}

// JoinCPUCgroup moves process pid into a new cgroup parent/leaf of the
// cpu controller, below this process's own cgroup, as deep as a tenant's
// (the host's parent, then the tenant): the node is then scheduled as a
// tenant is, one group among the machine's others, and not as a task of
// this process's session autogroup (see the README's multi-tenant
// section: on a loaded machine that alone halved a tenant's qps against
// a node). It returns the directory; the caller removes it after the
// process ended. cgroup v1 (the cpu hierarchy) or v2 (with cpu in its
// parent's subtree_control).
func JoinCPUCgroup(pid int, parent, leaf string) (string, error) {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	var v1, v2 string
	for l := range strings.SplitSeq(string(mounts), "\n") {
		f := strings.Fields(l)
		sep := slices.Index(f, "-")
		if sep < 5 || sep+3 >= len(f) || f[3] != "/" {
			continue
		}
		switch {
		case f[sep+1] == "cgroup" && slices.Contains(strings.Split(f[sep+3], ","), "cpu"):
			v1 = f[4]
		case f[sep+1] == "cgroup2":
			v2 = f[4]
		}
	}
	var base string
	for l := range strings.SplitSeq(strings.TrimSpace(string(own)), "\n") {
		p := strings.SplitN(l, ":", 3)
		if len(p) != 3 {
			continue
		}
		if v1 != "" && slices.Contains(strings.Split(p[1], ","), "cpu") {
			base = v1 + p[2]
		} else if v1 == "" && v2 != "" && p[1] == "" {
			base = v2 + p[2]
		}
	}
	if base == "" {
		return "", fmt.Errorf("no cpu cgroup controller mounted")
	}
	dir := fmt.Sprintf("%s/%s/%s", base, parent, leaf)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if v1 == "" {
		// v2: the cpu controller must reach the leaf.
		for _, d := range []string{base, base + "/" + parent} {
			if err := os.WriteFile(d+"/cgroup.subtree_control", []byte("+cpu"), 0o644); err != nil {
				return dir, fmt.Errorf("enabling cpu in %s: %w", d, err)
			}
		}
	}
	if err := os.WriteFile(dir+"/cgroup.procs", []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return dir, fmt.Errorf("moving %d into %s: %w", pid, dir, err)
	}
	return dir, nil
}
