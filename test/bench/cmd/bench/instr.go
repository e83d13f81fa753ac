package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/test/bench"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// instrOptions are the flags of the instruction-count benchmark.
type instrOptions struct {
	on      bool
	queries int
	rate    int
}

func instrFlags(fs *flag.FlagSet) *instrOptions {
	o := &instrOptions{}
	fs.BoolVar(&o.on, "instructions", false, "instead of the dnsperf table: count the user-space instructions each server executes per query under valgrind's callgrind (reproducible on a loaded machine; see test/bench/README.md)")
	fs.IntVar(&o.queries, "instr-queries", 20000, "with -instructions: queries sent to each server (the first lines of the query file)")
	fs.IntVar(&o.rate, "instr-rate", 0, "with -instructions: queries per second dnsperf sends; 0: as fast as answers come back with -outstanding in flight, as in the dnsperf table (the server, slowed about 50 times by callgrind, is saturated and answers in batches); 2000: a lightly loaded server, one query per wake-up")
	return o
}

// instrRow is one server's instruction count.
type instrRow struct {
	name      string
	perf      bench.PerfResult
	total     uint64
	err       error
	perQuery  float64
	startTook time.Duration
}

// instructions runs the instruction-count benchmark: each server in turn
// under callgrind, instrumentation switched on once it answers correctly,
// a fixed number of queries at a fixed rate, and the count divided by the
// queries answered.
func (o *options) instructions(ctx context.Context, io *instrOptions) bool {
	valgrind, err := bench.LookTool("valgrind")
	if err != nil {
		logf("%v", err)
		return false
	}
	control, err := bench.LookTool("callgrind_control")
	if err != nil {
		logf("%v", err)
		return false
	}
	qfile, err := headLines(o.queryFile, filepath.Join(o.root, "queries-instr.txt"), io.queries)
	if err != nil {
		logf("%v", err)
		return false
	}
	var rows []*instrRow
	for _, name := range o.serverNames {
		r := &instrRow{name: name}
		rows = append(rows, r)
		r.err = o.instrOne(ctx, r, &bench.Callgrind{Valgrind: valgrind, Control: control, Forks: name == "nsd"}, qfile, io)
		if ctx.Err() != nil {
			return false
		}
		if r.err != nil {
			logf("%s: FAILED: %v", name, firstLine(r.err))
		} else {
			logf("%s: %d queries answered, %d lost, %.0f instructions per query", name, r.perf.Completed, r.perf.Lost, r.perQuery)
		}
	}
	rate := "unlimited"
	if io.rate > 0 {
		rate = strconv.Itoa(io.rate) + "/s"
	}
	fmt.Printf("\nUser-space instructions per query (callgrind; %d queries, rate %s, %d in flight; kernel work not counted)\n\n", io.queries, rate, o.outstanding)
	fmt.Printf("%14s %9s %6s %14s %12s\n", "server", "answered", "lost", "instructions", "instr/query")
	byName := map[string]*instrRow{}
	ok := true
	for _, r := range rows {
		byName[r.name] = r
		if r.err != nil {
			ok = false
			fmt.Printf("%14s FAILED: %s\n", r.name, firstLine(r.err))
			continue
		}
		fmt.Printf("%14s %9d %6d %14d %12.0f\n", r.name, r.perf.Completed, r.perf.Lost, r.total, r.perQuery)
	}
	fmt.Println()
	for _, ours := range []string{"shoestring", "shoestring-rrl"} {
		a := byName[ours]
		if a == nil || a.err != nil {
			continue
		}
		var parts []string
		for _, ref := range []string{"nsd", "knot"} {
			if b := byName[ref]; b != nil && b.err == nil && b.perQuery > 0 {
				parts = append(parts, fmt.Sprintf("%.2fx %s", a.perQuery/b.perQuery, ref))
			}
		}
		if len(parts) > 0 {
			fmt.Printf("%s: instructions per query %s\n", ours, strings.Join(parts, ", "))
		}
	}
	for _, r := range rows {
		if r.err != nil {
			fmt.Printf("\n%s: %v\n", r.name, r.err)
		}
	}
	return ok
}

func (o *options) instrOne(ctx context.Context, r *instrRow, cg *bench.Callgrind, qfile string, io *instrOptions) error {
	if !cg.Forks {
		total, perf, err := o.instrRun(ctx, r, cg, qfile, io, 1, "")
		if err != nil {
			return err
		}
		r.total, r.perf = total, perf
	} else {
		// Whole-life counts of two runs, n and 2n queries: the
		// difference is n queries (Callgrind says why).
		t1, p1, err := o.instrRun(ctx, r, cg, qfile, io, 1, "-1")
		if err != nil {
			return err
		}
		t2, p2, err := o.instrRun(ctx, r, cg, qfile, io, 2, "-2")
		if err != nil {
			return err
		}
		if t2 < t1 || p2.Completed <= p1.Completed {
			return fmt.Errorf("the run with twice the queries counted %d instructions for %d answers, the first %d for %d", t2, p2.Completed, t1, p1.Completed)
		}
		r.total = t2 - t1
		r.perf = p2
		r.perf.Completed -= p1.Completed
		r.perf.Lost += p1.Lost
	}
	if r.perf.Completed == 0 {
		return fmt.Errorf("no query answered")
	}
	r.perQuery = float64(r.total) / float64(r.perf.Completed)
	return nil
}

// instrRun starts the server under callgrind, sends the query file passes
// times and returns the instructions counted and dnsperf's result.
func (o *options) instrRun(ctx context.Context, r *instrRow, cg *bench.Callgrind, qfile string, io *instrOptions, passes int, suffix string) (uint64, bench.PerfResult, error) {
	var none bench.PerfResult
	srv, err := o.server(r.name)
	if err != nil {
		return 0, none, err
	}
	dir := filepath.Join(o.root, r.name+"-instr"+suffix)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, none, err
	}
	cg.Dir = dir
	port, err := refserver.FreePort()
	if err != nil {
		return 0, none, err
	}
	argv, env, err := srv.Command(dir, o.zoneFile, port)
	if err != nil {
		return 0, none, err
	}
	argv, env = cg.Wrap(argv, env)
	proc, err := bench.Start(r.name, o.pin(o.serverCPU), argv, env, filepath.Join(dir, "output.log"))
	if err != nil {
		return 0, none, err
	}
	// valgrind writes profiles at exit, slowly: give it a minute.
	stop := func() { proc.Stop(time.Minute) }
	defer stop()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	limit := o.startTimeout
	if limit < 15*time.Minute {
		limit = 15 * time.Minute // loading under valgrind is slow
	}
	if r.startTook, err = bench.WaitReady(ctx, proc, addr, bench.ReadyProbe(o.zone), limit); err != nil {
		return 0, none, err
	}
	for _, p := range bench.Probes(o.zone) {
		if err := bench.Ask(addr, p, 5*time.Second); err != nil {
			return 0, none, fmt.Errorf("wrong answer, not measuring it: %w", err)
		}
	}
	// A server may still be busy after its first answer (Shoestring
	// collects garbage and returns memory once a load is done): count
	// only once it has gone quiet.
	if err := waitIdle(ctx, proc.Pid(), 10*time.Minute); err != nil {
		logf("%s: %v; counting anyway", r.name, err)
	}
	pids := bench.Tree(proc.Pid())
	if err := cg.Start(ctx, proc.Pid()); err != nil {
		return 0, none, err
	}
	perf := o.perfDefaults
	perf.Port, perf.QueryFile, perf.Passes, perf.Rate = port, qfile, passes, io.rate
	if perf.Timeout < 5*time.Second {
		perf.Timeout = 5 * time.Second
	}
	res, err := perf.Run(ctx)
	if err != nil {
		return 0, none, err
	}
	if now := bench.Tree(proc.Pid()); fmt.Sprint(now) != fmt.Sprint(pids) {
		return 0, none, fmt.Errorf("server processes changed during the run (%v, then %v): counts would be incomplete", pids, now)
	}
	total, err := cg.Stop(ctx, proc.Pid(), stop)
	return total, res, err
}

// headLines copies the first n lines of src to dst.
func headLines(src, dst string, n int) (string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	lines := strings.SplitAfter(string(b), "\n")
	if n < len(lines) {
		lines = lines[:n]
	}
	return dst, os.WriteFile(dst, []byte(strings.Join(lines, "")), 0o644)
}

// waitIdle waits until pid's tree used at most 2% of a core over a
// second.
func waitIdle(ctx context.Context, pid int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	prev, err := bench.SampleCPU(pid)
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		cur, err := bench.SampleCPU(pid)
		if err != nil {
			return err
		}
		if time.Duration(cur.Ticks-prev.Ticks)*bench.ClockTick <= 20*time.Millisecond {
			return nil
		}
		prev = cur
	}
	return fmt.Errorf("still busy after %s", limit)
}
