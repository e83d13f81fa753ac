package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/test/bench"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// The multi-tenant benchmark (-tenants N): one plain node (`shoestring
// run`) on the server cores, then `shoestring host` with 1 tenant and with
// N tenants, each pinned by its cpuset to its share of the same cores, all
// serving the bench zone; dnsperf against all of them at once. Then, with
// N ≥ 2, a flood on tenant 1 while tenant 2 is sent a steady load. Each
// server runs in a network namespace of its own (the host puts its
// tenants' addresses on that namespace's lo, not the machine's).

type tenantOptions struct {
	n              int
	servers        string
	clients        string
	flood          bool
	floodVictimPct float64
}

func tenantFlags(fs *flag.FlagSet) *tenantOptions {
	t := &tenantOptions{}
	fs.IntVar(&t.n, "tenants", 0, "run only the multi-tenant benchmark with N tenants (N ≥ 1): a plain node, then `shoestring host` with 1 and N tenants on the same cores (needs root)")
	fs.StringVar(&t.servers, "tenant-cores", "1", "-tenants: cores (a CPU list: 1, 4-11, 2,4) the node and the host run on; each tenant's cpuset is its share of them")
	fs.StringVar(&t.clients, "tenant-client-cores", "0", "-tenants: cores the dnsperf processes run on (one dnsperf per tenant, round-robin over these)")
	fs.BoolVar(&t.flood, "tenant-flood", true, "-tenants N ≥ 2: also flood tenant 1 while tenant 2 gets a steady load, and report what tenant 2 lost")
	fs.Float64Var(&t.floodVictimPct, "tenant-victim-load", 50, "-tenant-flood: tenant 2's steady load, in % of the qps it reached in the N-tenant run")
	return t
}

// tenantRow is one line of the table: one server setup measured with
// some number of concurrent dnsperf processes, -runs times.
type tenantRow struct {
	name    string
	perfs   int
	runs    []bench.ManyRun
	err     error
	ratioTo *tenantRow
}

// median is the run with the median qps (the lower middle one for an
// even count).
func (r *tenantRow) median() bench.ManyRun {
	rs := slices.Clone(r.runs)
	slices.SortFunc(rs, func(a, b bench.ManyRun) int { return cmp.Compare(a.Perf.QPS, b.Perf.QPS) })
	return rs[(len(rs)-1)/2]
}

// target is one running server setup: the node, or a host with its
// tenants, in its own network namespace.
type target struct {
	name  string
	proc  *bench.Proc
	ns    string
	addrs []string // DNS addresses, port 53
	rows  []*tenantRow
	del   func()
	err   error
}

func (tg *target) stop(grace time.Duration) {
	if tg.proc != nil {
		tg.proc.Stop(grace)
		tg.proc = nil
	}
	if tg.del != nil {
		tg.del()
		tg.del = nil
	}
}

// tenantBench runs the benchmark and prints its table; false when
// something failed.
func (o *options) tenantBench(ctx context.Context, t *tenantOptions) bool {
	lay, err := bench.NewTenantLayout(t.n, t.servers, t.clients, runtime.NumCPU())
	if err != nil {
		logf("%v", err)
		return false
	}
	if os.Geteuid() != 0 {
		logf("-tenants needs root (network namespaces, cgroups, the tenants' chroots)")
		return false
	}
	tools := map[string]string{}
	for _, name := range []string{"ip", "nsenter"} {
		p, err := bench.LookTool(name)
		if err != nil {
			logf("%v", err)
			return false
		}
		tools[name] = p
	}
	if _, err := os.Stat(o.bin); err != nil {
		logf("binary %s: %v (run `make build`, or pass -bin)", o.bin, err)
		return false
	}
	logf("layout: %s", lay.Describe())
	tb := &tenantRun{o: o, lay: lay, ip: tools["ip"], nsenter: tools["nsenter"], cgroup: fmt.Sprintf("shoestring-bench-%d", os.Getpid())}
	defer tb.removeCgroups()

	// Every setup is started first and stays up (idle: a few timers)
	// while the others are measured, round-robin, so that whatever else
	// the machine does drifts across all of them alike. The node is
	// measured with as many dnsperf processes as each tenant run has, so
	// the ratios compare servers, not dnsperf setups.
	node := tb.node(ctx)
	node.rows = []*tenantRow{{name: "node", perfs: 1}}
	if t.n > 1 {
		node.rows = append(node.rows, &tenantRow{name: "node", perfs: t.n})
	}
	targets := []*target{node}
	one := tb.host(ctx, 1)
	one.rows = []*tenantRow{{name: "1 tenant", perfs: 1, ratioTo: node.rows[0]}}
	targets = append(targets, one)
	var many *target
	if t.n > 1 {
		many = tb.host(ctx, t.n)
		many.rows = []*tenantRow{{name: fmt.Sprintf("%d tenants", t.n), perfs: t.n, ratioTo: node.rows[1]}}
		targets = append(targets, many)
	}
	defer func() {
		for _, tg := range targets {
			tg.stop(o.stopGrace)
		}
	}()
	for _, tg := range targets {
		if tg.err != nil {
			logf("%s: FAILED: %v", tg.name, tg.err)
			for _, r := range tg.rows {
				r.err = tg.err
			}
		}
	}
	for round := range o.runs {
		for _, tg := range targets {
			for _, r := range tg.rows {
				if r.err != nil || ctx.Err() != nil {
					continue
				}
				m, err := tb.measure(ctx, tg.proc, tb.perfs(tg.ns, tg.addrs, r.perfs))
				if ctx.Err() != nil {
					break // interrupted: nothing failed
				}
				if err != nil {
					r.err = err
					logf("%s: FAILED: %v", r.name, firstLine(err))
					continue
				}
				r.runs = append(r.runs, m)
				logf("%s (%d dnsperf), run %d/%d: %.0f qps, %.2f µs CPU/query, CPU: servers %.0f%%, dnsperf %.0f%%, other %.0f%%",
					r.name, r.perfs, round+1, o.runs, m.Perf.QPS, m.MicrosPerQuery(), 100*m.ServerUtil(), 100*m.ClientUtil(), 100*m.OtherUtil())
			}
		}
	}
	var flood *floodResult
	if many != nil && many.rows[0].err == nil && t.flood && ctx.Err() == nil {
		flood = tb.flood(ctx, many, t.floodVictimPct)
	}
	if ctx.Err() != nil {
		return true
	}
	var rows []*tenantRow
	for _, tg := range targets {
		rows = append(rows, tg.rows...)
	}
	printTenantTable(rows, lay, o)
	if flood != nil {
		printFlood(flood, lay)
	}
	ok := flood == nil || flood.err == nil
	for _, r := range rows {
		if r.err != nil {
			ok = false
		}
	}
	return ok
}

type tenantRun struct {
	o            *options
	lay          bench.TenantLayout
	ip, nsenter  string
	cgroup       string
	netnsCounter int
}

// netns makes a fresh network namespace with lo up; the returned func
// deletes it.
func (tb *tenantRun) netns() (string, func(), error) {
	tb.netnsCounter++
	name := fmt.Sprintf("ssbench%d-%d", os.Getpid(), tb.netnsCounter)
	if out, err := exec.Command(tb.ip, "netns", "add", name).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("ip netns add %s: %v %s", name, err, out)
	}
	del := func() { exec.Command(tb.ip, "netns", "del", name).Run() }
	if out, err := exec.Command(tb.ip, "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		del()
		return "", nil, fmt.Errorf("ip -n %s link set lo up: %v %s", name, err, out)
	}
	return "/run/netns/" + name, del, nil
}

// start runs argv in the namespace, pinned to the server cores, and waits
// until every address answers the ready probe, then every kind of query,
// correctly.
func (tb *tenantRun) start(ctx context.Context, ns, name string, argv []string, logPath string, addrs []string) (*bench.Proc, error) {
	o := tb.o
	proc, err := refserver.Start(refserver.Command{Name: name, Argv: argv,
		Prefix:  []string{tb.nsenter, "--net=" + ns, "--", o.taskset, "-c", bench.FormatCPUList(tb.lay.Servers)},
		LogFile: logPath})
	if err != nil {
		return nil, err
	}
	err = bench.InNetns(ns, func() error {
		for _, a := range addrs {
			a += ":53"
			d, err := bench.WaitReady(ctx, proc, a, bench.ReadyProbe(o.zone), o.startTimeout)
			if err != nil {
				return err
			}
			logf("%s: %s answers correctly %.2fs after start", name, a, d.Seconds())
			for _, p := range bench.Probes(o.zone) {
				if err := bench.Ask(a, p, time.Second); err != nil {
					return fmt.Errorf("%s: wrong answer, not benchmarking it: %w", a, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		proc.Stop(o.stopGrace)
		return nil, err
	}
	return proc, nil
}

// perfs are count dnsperf processes in ns, the i-th against addrs[i mod
// len] on the i-th client core.
func (tb *tenantRun) perfs(ns string, addrs []string, count int) []bench.Perf {
	var ps []bench.Perf
	for i := range count {
		p := tb.o.perfDefaults
		p.Pin = bench.Pin{Taskset: tb.o.taskset, CPU: tb.lay.Client(i), Pre: []string{tb.nsenter, "--net=" + ns, "--"}}
		p.Addr, p.Port = addrs[i%len(addrs)], 53
		ps = append(ps, p)
	}
	return ps
}

func (tb *tenantRun) cores() []int {
	return append(slices.Clone(tb.lay.Servers), tb.lay.Clients...)
}

// measure runs a warm-up and a measured run of perfs against proc.
func (tb *tenantRun) measure(ctx context.Context, proc *bench.Proc, perfs []bench.Perf) (bench.ManyRun, error) {
	o := tb.o
	if o.warmup > 0 {
		w := make([]bench.Perf, len(perfs))
		for i, p := range perfs {
			p.Duration = o.warmup
			w[i] = p
		}
		if _, err := bench.MeasureMany(ctx, proc.Pid(), proc.Pid(), w, tb.cores()); err != nil {
			return bench.ManyRun{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	for i := range perfs {
		perfs[i].Duration = o.duration
	}
	r, err := bench.MeasureMany(ctx, proc.Pid(), proc.Pid(), perfs, tb.cores())
	if err == nil && proc.Exited() {
		err = fmt.Errorf("%s died during the run; log %s:\n%s", proc.Name, proc.LogFile, proc.Tail(15))
	}
	if err == nil && r.TreeChanged {
		err = fmt.Errorf("%s's processes changed during the run (a tenant restarted?); log %s", proc.Name, proc.LogFile)
	}
	return r, err
}

// node starts the plain node: `shoestring run` with the zone in its
// config, listening on 127.0.0.1:53 of its namespace.
func (tb *tenantRun) node(ctx context.Context) *target {
	o := tb.o
	tg := &target{name: "node", addrs: []string{"127.0.0.1"}}
	tg.ns, tg.del, tg.err = tb.netns()
	if tg.err != nil {
		return tg
	}
	dir := filepath.Join(o.root, "node")
	if tg.err = os.MkdirAll(filepath.Join(dir, "data"), 0o755); tg.err != nil {
		return tg
	}
	cfg := filepath.Join(dir, "node.yaml")
	if tg.err = writeFile(cfg, func(w io.Writer) error {
		return bench.WriteNodeConfig(w, filepath.Join(dir, "data"), "127.0.0.1:53", o.zone.Origin, o.zoneFile)
	}); tg.err != nil {
		return tg
	}
	tg.proc, tg.err = tb.start(ctx, tg.ns, "node", []string{o.bin, "run", "-config", cfg}, filepath.Join(dir, "output.log"), tg.addrs)
	if tg.err == nil {
		tb.checkAffinity(tg.proc.Pid(), "node")
		// Scheduled as a tenant is: a cgroup as deep as a tenant's
		// (removeCgroups removes it: its name has tb.cgroup's prefix).
		if cg, err := bench.JoinCPUCgroup(tg.proc.Pid(), tb.cgroup+"-node", "node"); err != nil {
			logf("WARNING: node stays in this process's cpu cgroup (%v): on a loaded machine it gets more CPU than a tenant would", err)
		} else {
			logf("node: in cpu cgroup %s", cg)
		}
	}
	return tg
}

// host starts `shoestring host` with n tenants, t1 … tn, each on its
// address and pinned to its share of the server cores.
func (tb *tenantRun) host(ctx context.Context, n int) *target {
	o := tb.o
	tg := &target{name: fmt.Sprintf("host with %d tenant(s)", n)}
	lay := tb.lay
	lay.Tenants = n
	ts := lay.BenchTenants(n)
	for _, t := range ts {
		tg.addrs = append(tg.addrs, t.Addr)
	}
	tg.ns, tg.del, tg.err = tb.netns()
	if tg.err != nil {
		return tg
	}
	dir := filepath.Join(o.root, fmt.Sprintf("host-%d", n))
	if tg.err = os.MkdirAll(dir, 0o755); tg.err != nil {
		return tg
	}
	cfg := filepath.Join(dir, "host.yaml")
	// Each host its own cgroup parent (both have a t1), side by side:
	// a v1 cpuset parent without cores of its own would refuse them.
	if tg.err = writeFile(cfg, func(w io.Writer) error {
		return bench.WriteHostConfig(w, bench.HostSpec{Data: filepath.Join(dir, "data"), Management: "127.0.0.1:8053",
			Cgroup: fmt.Sprintf("%s-%d", tb.cgroup, n), Origin: o.zone.Origin, ZoneFile: o.zoneFile, Tenants: ts})
	}); tg.err != nil {
		return tg
	}
	tg.proc, tg.err = tb.start(ctx, tg.ns, tg.name, []string{o.bin, "host", "-config", cfg}, filepath.Join(dir, "output.log"), tg.addrs)
	if tg.err == nil {
		tb.checkTenantAffinity(tg.proc.Pid(), ts)
	}
	return tg
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkAffinity warns when a process's threads may run outside the
// server cores.
func (tb *tenantRun) checkAffinity(pid int, name string) {
	if bad := bench.Affinity(pid, bench.FormatCPUList(tb.lay.Servers)); len(bad) > 0 {
		logf("WARNING: %s: threads not pinned to cores %s: %s", name, bench.FormatCPUList(tb.lay.Servers), strings.Join(bad, "; "))
	}
}

// checkTenantAffinity checks that each tenant's server threads may run
// only on its share (the cpuset did its work).
func (tb *tenantRun) checkTenantAffinity(hostPid int, ts []bench.TenantSpec) {
	for _, pid := range bench.Tree(hostPid)[1:] {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		for _, t := range ts {
			if strings.Contains(string(env), `"name":"`+t.Name+`"`) {
				if bad := bench.Affinity(pid, bench.FormatCPUList(t.CPUs)); len(bad) > 0 {
					logf("WARNING: tenant %s: threads not on its cpuset %s: %s", t.Name, bench.FormatCPUList(t.CPUs), strings.Join(bad, "; "))
				}
			}
		}
	}
}

// removeCgroups removes the hosts' parent cgroups (tb.cgroup-N), which a host leaves
// for its next start (its tenants' own are gone with them).
func (tb *tenantRun) removeCgroups() {
	var dirs []string
	filepath.WalkDir("/sys/fs/cgroup", func(p string, e os.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		if strings.Count(p, "/") > 8 {
			return filepath.SkipDir
		}
		if strings.HasPrefix(e.Name(), tb.cgroup+"-") {
			dirs = append(dirs, p)
			return filepath.SkipDir
		}
		return nil
	})
	for _, d := range dirs {
		// Children first: a tenant's cgroup left by a host that was killed.
		var sub []string
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				sub = append(sub, p)
			}
			return nil
		})
		for i := len(sub) - 1; i >= 0; i-- {
			os.Remove(sub[i])
		}
	}
}

// floodResult is tenant 2's steady load without and with a flood on
// tenant 1.
type floodResult struct {
	rate            int
	base, underLoad bench.PerfResult
	flood           bench.PerfResult
	err             error
}

// answered is the share of sent queries that were answered.
func answered(p bench.PerfResult) float64 {
	if p.Sent == 0 {
		return 0
	}
	return float64(p.Completed) / float64(p.Sent)
}

// cost is the share of tenant 2's answered queries the flood took away.
func (fr *floodResult) cost() float64 {
	if a := answered(fr.base); a > 0 {
		return 1 - answered(fr.underLoad)/a
	}
	return 0
}

// flood sends tenant 2 a steady load (victimPct % of what it reached in
// the N-tenant run) for -duration, alone and then while an unlimited
// dnsperf with 4 × -outstanding queries in flight floods tenant 1, and
// compares the share of tenant 2's queries that were answered.
func (tb *tenantRun) flood(ctx context.Context, tg *target, victimPct float64) *floodResult {
	o := tb.o
	fr := &floodResult{}
	med := tg.rows[0].median()
	if len(med.Each) < 2 {
		fr.err = fmt.Errorf("no per-tenant figures from the N-tenant run")
		return fr
	}
	fr.rate = max(1, int(med.Each[1].QPS*victimPct/100))
	ps := tb.perfs(tg.ns, tg.addrs[:2], 2)
	attacker, victim := ps[0], ps[1]
	victim.Rate = fr.rate
	victim.Duration, attacker.Duration = o.duration, o.duration
	attacker.Outstanding = 4 * o.outstanding
	pid := tg.proc.Pid()
	r, err := bench.MeasureMany(ctx, pid, pid, []bench.Perf{victim}, tb.cores())
	if err != nil {
		fr.err = fmt.Errorf("tenant 2 alone: %w", err)
		return fr
	}
	fr.base = r.Perf
	logf("flood: t2 alone, %d qps offered: %d of %d answered", fr.rate, r.Perf.Completed, r.Perf.Sent)
	r, err = bench.MeasureMany(ctx, pid, pid, []bench.Perf{victim, attacker}, tb.cores())
	if err != nil {
		fr.err = fmt.Errorf("tenant 2 while tenant 1 is flooded: %w", err)
		return fr
	}
	fr.underLoad, fr.flood = r.Each[0], r.Each[1]
	logf("flood: t2, %d qps offered, while t1 is flooded (%.0f qps answered): %d of %d answered", fr.rate, fr.flood.QPS, fr.underLoad.Completed, fr.underLoad.Sent)
	if tg.proc.Exited() {
		fr.err = fmt.Errorf("host died during the flood")
	}
	return fr
}

// pairedShares is r's qps in each run as a share of its node's in the
// same run, and their median: the runs take turns (node, then tenants, in
// each), so a machine whose speed drifts over minutes weighs on both
// sides of each pair alike, where the medians of the two rows may come
// from runs minutes apart.
func pairedShares(r *tenantRow) string {
	b := r.ratioTo
	if b == nil || b.err != nil || len(b.runs) != len(r.runs) {
		return ""
	}
	var shares []float64
	var parts []string
	for i, x := range r.runs {
		if q := b.runs[i].Perf.QPS; q > 0 {
			shares = append(shares, x.Perf.QPS/q)
			parts = append(parts, fmt.Sprintf("%.1f%%", 100*x.Perf.QPS/q))
		}
	}
	if len(shares) == 0 {
		return ""
	}
	slices.Sort(shares)
	return fmt.Sprintf("%s (median %.1f%%)", strings.Join(parts, ", "), 100*shares[(len(shares)-1)/2])
}

func printTenantTable(rows []*tenantRow, lay bench.TenantLayout, o *options) {
	fmt.Printf("\nMulti-tenant: aggregate qps of `shoestring host` tenants against one `shoestring run` node on the same cores\n")
	fmt.Printf("layout: %s\n", lay.Describe())
	fmt.Printf("dnsperf: -c %d -q %d, no rate limit, %s per run after a %s warm-up, one dnsperf per address, all at once; median of %d run(s)\n\n",
		o.clients, o.outstanding, o.duration, o.warmup, o.runs)
	fmt.Printf("%-10s %8s %9s %6s %6s %9s %8s %12s %10s  %-13s %s\n", "server", "dnsperfs", "qps", "lost", "failed", "CPU µs/q", "srv CPU", "dnsperf CPU", "other CPU", "qps/node", "µs/q/node")
	unsaturated := false
	for _, r := range rows {
		if r.err != nil {
			fmt.Printf("%-10s %8d FAILED: %s\n", r.name, r.perfs, firstLine(r.err))
			continue
		}
		m := r.median()
		ratio, cpu := "-", "-"
		if b := r.ratioTo; b != nil && b.err == nil && len(b.runs) > 0 {
			bm := b.median()
			if bm.Perf.QPS > 0 {
				x := m.Perf.QPS / bm.Perf.QPS
				mark := "ok"
				if x < 0.9 {
					mark = "<90%"
				}
				ratio = fmt.Sprintf("%.1f%% %s", 100*x, mark)
			}
			if bm.MicrosPerQuery() > 0 {
				cpu = fmt.Sprintf("%.2fx", m.MicrosPerQuery()/bm.MicrosPerQuery())
			}
		}
		if m.ServerUtil() < 0.9*float64(len(lay.Servers)) {
			unsaturated = true
		}
		fmt.Printf("%-10s %8d %9.0f %6d %6d %9.2f %7.0f%% %11.0f%% %9.0f%%  %-13s %s\n", r.name, r.perfs, m.Perf.QPS, m.Perf.Lost, m.Perf.Failed(),
			m.MicrosPerQuery(), 100*m.ServerUtil(), 100*m.ClientUtil(), 100*m.OtherUtil(), ratio, cpu)
		if len(m.Each) > 1 {
			var each []string
			for i, e := range m.Each {
				each = append(each, fmt.Sprintf("#%d %.0f", i+1, e.QPS))
			}
			fmt.Printf("%-10s %8s qps per dnsperf: %s\n", "", "", strings.Join(each, ", "))
		}
		if m.SocketDrops > 0 {
			fmt.Printf("%-10s %8s %d datagrams dropped at the servers' sockets\n", "", "", m.SocketDrops)
		}
		if len(r.runs) > 1 {
			var qs []string
			for _, x := range r.runs {
				qs = append(qs, fmt.Sprintf("%.0f", x.Perf.QPS))
			}
			fmt.Printf("%-10s %8s qps per run: %s\n", "", "", strings.Join(qs, ", "))
			if p := pairedShares(r); p != "" {
				fmt.Printf("%-10s %8s qps/node run by run: %s\n", "", "", p)
			}
		}
	}
	fmt.Println()
	fmt.Println("qps/node: the row's qps as a share of the node's with as many dnsperf processes (goal: at least 90%).")
	fmt.Println("µs/q/node: the row's server CPU per answered query (host and tenants together) as a multiple of the node's.")
	fmt.Println("srv CPU and dnsperf CPU are in % of one core; other CPU is what other processes took on these cores.")
	if unsaturated {
		fmt.Printf("NOTE: some rows' servers used under 90%% of their %d core(s): dnsperf or other load was the limit there, so\n", len(lay.Servers))
		fmt.Println("their qps says little about the servers; compare them by µs/q/node, and rerun on a quiet machine or with more client cores.")
	}
	if lay.SharedCores() {
		fmt.Printf("%d tenants on %d server core(s): tenants share cores, so the N-tenant row measures the cost of the host's isolation, not scaling.\n", lay.Tenants, len(lay.Servers))
	}
}

func printFlood(fr *floodResult, lay bench.TenantLayout) {
	fmt.Println()
	if fr.err != nil {
		fmt.Printf("Flood: FAILED: %v\n", firstLine(fr.err))
		return
	}
	verdict := "meets the <5% goal"
	if fr.cost() >= 0.05 {
		verdict = "OVER the 5% goal"
	}
	fmt.Printf("Flood on tenant 1 (unlimited dnsperf, %.0f qps answered) while tenant 2 is offered %d qps:\n", fr.flood.QPS, fr.rate)
	fmt.Printf("  tenant 2 alone:        %d of %d answered (%.2f%%), average latency %.2f ms\n", fr.base.Completed, fr.base.Sent, 100*answered(fr.base), 1000*fr.base.AvgLatency)
	fmt.Printf("  tenant 2 during flood: %d of %d answered (%.2f%%), average latency %.2f ms\n", fr.underLoad.Completed, fr.underLoad.Sent, 100*answered(fr.underLoad), 1000*fr.underLoad.AvgLatency)
	fmt.Printf("  the flood cost tenant 2 %.2f%% of its answered share (%s)\n", 100*fr.cost(), verdict)
	if a, b := lay.Share(0), lay.Share(1); slices.ContainsFunc(a, func(c int) bool { return slices.Contains(b, c) }) {
		fmt.Printf("  tenants 1 and 2 share core(s) %s: only the kernel's fair share between their cgroups keeps tenant 2 served\n", bench.FormatCPUList(a))
	}
}
