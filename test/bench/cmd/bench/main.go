// Command bench is `make bench`: it runs dnsperf against Shoestring, NSD
// and Knot in one run on this machine, each server alone on one core and
// dnsperf on another, all serving the same generated 100,000-name zone, and
// prints throughput, server CPU per query, memory and zone load times, with
// Shoestring's figures as ratios of the other two. See test/bench/README.md
// for how to read the output.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shoestring-dns/shoestring/test/bench"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

type options struct {
	bin                   string
	servers               string
	refOnly               bool
	duration, warmup      time.Duration
	runs, loadRuns        int
	clients, outstanding  int
	timeout, startTimeout time.Duration
	hosts, queries        int
	seed                  uint64
	serverCPU, clientCPU  int
	keep                  bool
	stopGrace             time.Duration
	zoneFile, queryFile   string
	taskset, dnsperf      string
	zone                  bench.ZoneConfig
	mix                   bench.Mix
	perfDefaults          bench.Perf
	root                  string
	serverNames           []string
	xfrRes                *xfrResult // the AXFR benchmark's, once run
}

func main() { os.Exit(run()) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run() int {
	var o options
	flag.StringVar(&o.bin, "bin", "out/shoestring", "Shoestring binary (`make build` writes out/shoestring)")
	flag.StringVar(&o.servers, "servers", "shoestring,shoestring-rrl,nsd,knot", "comma-separated servers to benchmark, in this order (shoestring-rrl: Shoestring with RRL on and no source over its limit, for its cost)")
	flag.BoolVar(&o.refOnly, "ref-only", false, "benchmark only NSD and Knot (no Shoestring)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured dnsperf run per server")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured dnsperf run before each measured one")
	flag.IntVar(&o.runs, "runs", 1, "measured runs per server, taken round-robin across servers; the table shows medians")
	flag.IntVar(&o.loadRuns, "load-runs", 3, "fresh starts per server to time zone loading; the table shows the median")
	flag.IntVar(&o.clients, "clients", 4, "dnsperf -c: client sockets")
	flag.IntVar(&o.outstanding, "outstanding", 100, "dnsperf -q: queries in flight")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Second, "dnsperf -t: when a query counts as lost")
	flag.DurationVar(&o.startTimeout, "start-timeout", 2*time.Minute, "how long a server may take to answer correctly after start")
	flag.IntVar(&o.hosts, "hosts", bench.DefaultZone().Hosts, "host names in the generated zone")
	flag.IntVar(&o.queries, "queries", bench.DefaultQueries().Count, "lines in the generated query file (dnsperf loops over it)")
	flag.Uint64Var(&o.seed, "seed", bench.DefaultQueries().Seed, "query file seed")
	flag.IntVar(&o.serverCPU, "server-cpu", 0, "core the servers are pinned to")
	flag.IntVar(&o.clientCPU, "client-cpu", 1, "core dnsperf is pinned to")
	flag.DurationVar(&o.stopGrace, "stop-grace", 10*time.Second, "how long a server may take to exit after SIGTERM")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (zone, queries, configs, logs); it is always kept after a failure")
	million := flag.Bool("million", false, "the big-zone run: a 1,000,000-record zone (-hosts 499996, AXFR of as many), shorter dnsperf runs (-duration 3s -warmup 1s unless given), and a summary of peak and steady RSS and load times from file, store and AXFR with ratios")
	xo := xfrFlags(flag.CommandLine)    // xfr.go: the AXFR benchmark
	ao := ampFlags(flag.CommandLine)    // amp.go: the amplification benchmark
	io := instrFlags(flag.CommandLine)  // instr.go: instructions per query under callgrind
	to := tenantFlags(flag.CommandLine) // tenants.go: tenants of `shoestring host` against one node
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./test/bench/cmd/bench [flags]\n\n"+
			"Benchmarks Shoestring, NSD and Knot with dnsperf; see test/bench/README.md.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		return 2
	}
	if *million {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["hosts"] {
			o.hosts = 499_996 // 7 fixed records + 2 per host: 999,999
		}
		if !set["duration"] {
			o.duration = 3 * time.Second
		}
		if !set["warmup"] {
			o.warmup = time.Second
		}
		xo.records = 2*o.hosts + 7
	}

	// Interrupts cancel the run; everything started is killed on the way
	// out. A second interrupt, or a cleanup that hangs, exits at once after
	// killing the servers.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		logf("%v: stopping and cleaning up", s)
		cancel()
		select {
		case <-sigs:
		case <-time.After(20 * time.Second):
		}
		bench.KillAll()
		os.Exit(130)
	}()
	defer bench.KillAll()

	if err := o.setup(); err != nil {
		logf("%v", err)
		return 2
	}
	ok := false
	defer func() {
		if o.keep || !ok {
			logf("kept %s", o.root)
			return
		}
		os.RemoveAll(o.root)
	}()

	// A mode of its own runs instead of the dnsperf table.
	mode := func(run func() bool) int {
		ok = run()
		switch {
		case ctx.Err() != nil:
			ok = true
			return 130
		case !ok:
			return 1
		}
		return 0
	}
	if io.on {
		return mode(func() bool { return o.instructions(ctx, io) })
	}
	if to.n != 0 {
		return mode(func() bool { return o.tenantBench(ctx, to) })
	}
	if ao.on {
		return mode(func() bool { return o.amplification(ctx, ao) })
	}

	var rows []*bench.Row
	if !xo.only {
		rows = o.bench(ctx)
	}
	if ctx.Err() != nil {
		ok = true // interrupted on purpose: nothing to look into
		return 130
	}
	if !xo.only {
		fmt.Println()
		bench.Print(os.Stdout, rows, "shoestring", []string{"nsd", "knot"})
		printRRLCost(rows)
	}
	ok = true
	for _, r := range rows {
		if !r.OK() || r.StoreErr != nil {
			ok = false
		}
	}
	if !o.runXfr(ctx, xo) {
		ok = false
	}
	if *million && !xo.only {
		fmt.Printf("\nThe %d-record zone: memory and load\n", 2*o.hosts+7)
		var xf *bench.XfrFigures
		if o.xfrRes != nil {
			xf = &bench.XfrFigures{Took: o.xfrRes.Took, HWM: o.xfrRes.HWM, RSS: o.xfrRes.RSS}
		}
		bench.PrintLoads(os.Stdout, rows, "shoestring", []string{"nsd", "knot"}, xf)
	}
	if ctx.Err() != nil {
		ok = true
		return 130
	}
	if !ok {
		return 1
	}
	return 0
}

// setup checks the machine and tools, then writes the zone and query files.
func (o *options) setup() error {
	if o.runs < 1 || o.loadRuns < 1 {
		return fmt.Errorf("-runs and -load-runs must be at least 1")
	}
	if o.serverCPU == o.clientCPU {
		return fmt.Errorf("-server-cpu and -client-cpu are both %d: dnsperf would compete with the server", o.serverCPU)
	}
	if n := runtime.NumCPU(); n < 2 {
		return fmt.Errorf("this machine gives us %d core; the bench needs two (server, dnsperf)", n)
	}
	var err error
	if o.taskset, err = bench.LookTool("taskset"); err != nil {
		return err
	}
	if o.dnsperf, err = bench.LookTool("dnsperf"); err != nil {
		return err
	}
	seen := map[string]bool{}
	for s := range strings.SplitSeq(o.servers, ",") {
		s = strings.TrimSpace(s)
		if seen[s] {
			continue // each server has one row and one set of directories
		}
		seen[s] = true
		switch s {
		case "shoestring", "shoestring-rrl":
			if o.refOnly {
				continue
			}
		case "nsd", "knot":
		case "":
			continue
		default:
			return fmt.Errorf("unknown server %q in -servers (shoestring, shoestring-rrl, nsd, knot)", s)
		}
		o.serverNames = append(o.serverNames, s)
	}
	if len(o.serverNames) == 0 {
		return fmt.Errorf("no server selected")
	}
	o.zone = bench.DefaultZone()
	o.zone.Hosts = o.hosts
	o.mix = bench.DefaultMix

	if o.root, err = os.MkdirTemp("", "shoestring-bench-"); err != nil {
		return err
	}
	o.zoneFile = filepath.Join(o.root, "bench.test.zone")
	o.queryFile = filepath.Join(o.root, "queries.txt")
	zf, err := os.Create(o.zoneFile)
	if err != nil {
		return err
	}
	st, err := bench.WriteZone(zf, o.zone)
	if cerr := zf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing zone: %w", err)
	}
	qf, err := os.Create(o.queryFile)
	if err != nil {
		return err
	}
	counts, err := bench.WriteQueries(qf, bench.QueryConfig{Zone: o.zone, Count: o.queries, Seed: o.seed, Mix: o.mix})
	if cerr := qf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing queries: %w", err)
	}
	logf("zone %s: %d names, %d records; %d queries (A %d, AAAA %d, NXDOMAIN %d, wildcard %d), seed %d; in %s",
		o.zone.Origin, st.Names, st.Records, o.queries, counts[bench.KindA], counts[bench.KindAAAA],
		counts[bench.KindNX], counts[bench.KindWild], o.seed, o.root)
	o.perfDefaults = bench.Perf{
		Dnsperf: o.dnsperf, Pin: o.pin(o.clientCPU),
		Addr: "127.0.0.1", QueryFile: o.queryFile,
		Clients: o.clients, Outstanding: o.outstanding, Timeout: o.timeout,
	}
	return nil
}

func (o *options) pin(cpu int) bench.Pin {
	return bench.Pin{Taskset: o.taskset, CPU: cpu}
}

// instance is a server under test: its row and its running process.
type instance struct {
	row  *bench.Row
	srv  bench.Server
	proc *bench.Proc
	dir  string
	port int
}

func (o *options) server(name string) (bench.Server, error) {
	switch name {
	case "shoestring":
		return bench.Shoestring{Bin: o.bin}, nil
	case "shoestring-rrl":
		return bench.Shoestring{Bin: o.bin, RRL: &refserver.RRL{ResponsesPerSecond: rrlCostLimit, Slip: 2}}, nil
	case "nsd":
		p, err := bench.LookTool("nsd")
		return bench.NSD{Bin: p}, err
	case "knot":
		p, err := bench.LookTool("knotd")
		return bench.Knot{Bin: p}, err
	}
	return nil, fmt.Errorf("unknown server %q", name)
}

// started is a server that has answered correctly, and what that took.
type started struct {
	proc      *bench.Proc
	port      int
	wall, cpu time.Duration
}

// start starts srv in dir, its output in dir/logName, and waits for its
// first correct answer.
func (o *options) start(ctx context.Context, srv bench.Server, dir, logName string) (started, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return started{}, err
	}
	port, err := refserver.FreePort()
	if err != nil {
		return started{}, err
	}
	argv, env, err := srv.Command(dir, o.zoneFile, port)
	if err != nil {
		return started{}, fmt.Errorf("%s: %w", srv.Name(), err)
	}
	proc, err := bench.Start(srv.Name(), o.pin(o.serverCPU), argv, env, filepath.Join(dir, logName))
	if err != nil {
		return started{}, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	d, err := bench.WaitReady(ctx, proc, addr, bench.ReadyProbe(o.zone), o.startTimeout)
	if err == nil {
		var c bench.CPUSample
		if c, err = bench.SampleCPU(proc.Pid()); err == nil {
			return started{proc, port, d, time.Duration(c.Ticks) * bench.ClockTick}, nil
		}
	}
	proc.Stop(o.stopGrace)
	return started{}, err
}

// loadOnce starts in's server fresh for load round i (of -load-runs),
// timing the start to its first correct answer. The last round's
// instance is kept for the throughput runs; the others are stopped.
func (o *options) loadOnce(ctx context.Context, in *instance, i int) error {
	dir := filepath.Join(o.root, fmt.Sprintf("%s-%d", in.row.Name, i+1))
	st, err := o.start(ctx, in.srv, dir, "output.log")
	if err != nil {
		return err
	}
	in.row.FileLoad = append(in.row.FileLoad, st.wall)
	in.row.FileLoadCPU = append(in.row.FileLoadCPU, st.cpu)
	logf("%s: zone loaded from file in %.3fs (CPU %.2fs)", in.row.Name, st.wall.Seconds(), st.cpu.Seconds())
	if i < o.loadRuns-1 {
		st.proc.Stop(o.stopGrace)
		return nil
	}
	in.proc, in.port, in.dir = st.proc, st.port, dir
	return nil
}

// loaded checks every kind of query against the instance kept from the
// last load round, before it is benchmarked.
func (o *options) loaded(in *instance) error {
	addr := "127.0.0.1:" + strconv.Itoa(in.port)
	for _, p := range bench.Probes(o.zone) {
		if err := bench.Ask(addr, p, time.Second); err != nil {
			return fmt.Errorf("wrong answer, not benchmarking it: %w", err)
		}
	}
	if bad := bench.Affinity(in.proc.Pid(), strconv.Itoa(o.serverCPU)); len(bad) > 0 {
		in.row.Warnf("threads not pinned to core %d (they share dnsperf's core): %s", o.serverCPU, strings.Join(bad, "; "))
	}
	return nil
}

// measure runs one warm-up and one measured dnsperf run against in.
func (o *options) measure(ctx context.Context, in *instance, round int) error {
	perf := o.perfDefaults
	perf.Port = in.port
	if o.warmup > 0 {
		perf.Duration = o.warmup
		if _, err := perf.Run(ctx); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	perf.Duration = o.duration
	r, err := bench.Measure(ctx, in.proc, perf, o.serverCPU, o.clientCPU)
	if err != nil {
		return err
	}
	bench.CheckRun(in.row, r, o.mix)
	if r.TreeChanged {
		in.row.Warnf("run %d: server processes changed during the run; CPU time of exited ones is missing", round+1)
	}
	in.row.Runs = append(in.row.Runs, r)
	logf("%s: run %d/%d: %.0f qps, %.2f µs CPU/query, CPU: server %.0f%%, dnsperf %.0f%%, other %.0f%%",
		in.row.Name, round+1, o.runs, r.Perf.QPS, r.MicrosPerQuery(), 100*r.ServerUtil(), 100*r.ClientUtil(), 100*r.OtherUtil())
	return nil
}

// restartFromStore stops Shoestring and starts it again on the same data
// directory without -zone, -load-runs times: the time a rebooted box takes
// to serve from its store.
func (o *options) restartFromStore(ctx context.Context, in *instance) error {
	if !in.proc.Stop(o.stopGrace) {
		in.row.Warnf("did not exit within %s of SIGTERM; killed, so the store restart starts after a crash", o.stopGrace)
	}
	in.proc = nil
	srv := bench.Shoestring{Bin: o.bin, NoZone: true}
	for i := range o.loadRuns {
		st, err := o.start(ctx, srv, in.dir, fmt.Sprintf("restart-%d.log", i+1))
		if err != nil {
			return err
		}
		proc, port := st.proc, st.port
		in.row.StoreLoad = append(in.row.StoreLoad, st.wall)
		in.row.StoreLoadCPU = append(in.row.StoreLoadCPU, st.cpu)
		logf("%s: zone loaded from the store in %.3fs (CPU %.2fs)", in.row.Name, st.wall.Seconds(), st.cpu.Seconds())
		if i == o.loadRuns-1 {
			addr := "127.0.0.1:" + strconv.Itoa(port)
			for _, p := range bench.Probes(o.zone) {
				if err := bench.Ask(addr, p, time.Second); err != nil {
					proc.Stop(o.stopGrace)
					return fmt.Errorf("wrong answer after restart: %w", err)
				}
			}
			if m, err := bench.SampleMemory(proc.Pid()); err == nil {
				in.row.StoreMem = &m
			}
		}
		if !proc.Stop(o.stopGrace) {
			in.row.Warnf("did not exit within %s of SIGTERM after the store restart", o.stopGrace)
		}
	}
	return nil
}

// bench runs the whole benchmark and returns one row per server. A server
// that fails gets its error in its row; the others carry on.
func (o *options) bench(ctx context.Context) []*bench.Row {
	var ins []*instance
	fail := func(in *instance, err error) {
		in.row.Err = err
		logf("%s: FAILED: %v", in.row.Name, firstLine(err))
		if in.proc != nil {
			in.proc.Stop(o.stopGrace)
			in.proc = nil
		}
	}
	for _, name := range o.serverNames {
		in := &instance{row: &bench.Row{Name: name}}
		ins = append(ins, in)
		if srv, err := o.server(name); err != nil {
			fail(in, err)
		} else {
			in.srv = srv
		}
	}
	// Load rounds round-robin too (see below): this machine's speed
	// drifts over the minutes a server's starts take, so timing one
	// server's starts all before the next's skews their ratio.
	for i := range o.loadRuns {
		for _, in := range ins {
			if in.row.Err != nil {
				continue
			}
			if err := o.loadOnce(ctx, in, i); err != nil {
				fail(in, err)
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}
	for _, in := range ins {
		if in.row.Err == nil {
			if err := o.loaded(in); err != nil {
				fail(in, err)
			}
		}
	}

	// Round-robin, so that whatever else the machine does drifts across
	// all servers alike rather than landing on whichever ran at the time.
	for round := range o.runs {
		for _, in := range ins {
			if in.row.Err != nil {
				continue
			}
			if err := o.measure(ctx, in, round); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				fail(in, err)
			}
		}
	}

	for _, in := range ins {
		if in.proc == nil {
			continue
		}
		if m, err := bench.SampleMemory(in.proc.Pid()); err != nil {
			in.row.Warnf("reading memory: %v", err)
		} else {
			in.row.Mem = m
		}
	}
	for _, in := range ins {
		if in.proc == nil {
			continue
		}
		if s, ok := in.srv.(bench.Shoestring); ok && s.RRL == nil {
			if err := o.restartFromStore(ctx, in); err != nil {
				in.row.StoreErr = err
				logf("%s: restart from the store FAILED: %v", in.row.Name, firstLine(err))
			}
			continue
		}
		in.proc.Stop(o.stopGrace)
		in.proc = nil
	}
	rows := make([]*bench.Row, len(ins))
	for i, in := range ins {
		rows[i] = in.row
	}
	return rows
}

// rrlCostLimit is shoestring-rrl's responses per second: far above what
// dnsperf's one /24 sends even to the bucket all NXDOMAIN answers share,
// so RRL does all its work (classify, hash, look up, refill, pay) and
// limits nothing.
const rrlCostLimit = 10_000_000

// printRRLCost prints Shoestring's CPU per query with RRL on (no source
// over its limit) against off, from the same run. The bar is 5%.
func printRRLCost(rows []*bench.Row) {
	var off, on *bench.Row
	for _, r := range rows {
		switch r.Name {
		case "shoestring":
			off = r
		case "shoestring-rrl":
			on = r
		}
	}
	if off == nil || on == nil || !off.OK() || !on.OK() {
		return
	}
	a, b := off.CPUPerQuery(), on.CPUPerQuery()
	verdict := "within 5%"
	if b > a*1.05 {
		verdict = "OVER the 5% bar (rerun with -runs 5 on a quiet machine before believing it)"
	}
	fmt.Printf("\nRRL cost: Shoestring CPU %.2f µs/q with RRL on (%d/s, no source over it), %.2f µs/q off: %.3fx, %s\n",
		b, rrlCostLimit, a, b/a, verdict)
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
