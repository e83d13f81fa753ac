package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is everything measured for one server.
type Row struct {
	Name string
	// Err is why the server has no numbers (did not start, answered
	// wrongly, died). The rest of the bench goes on without it.
	Err       error
	Runs      []Run
	Mem       Memory          // after the last run: zone loaded, warmed up
	FileLoad  []time.Duration // start → first correct answer, zone from file
	StoreLoad []time.Duration // Shoestring only: restart from its store
	// CPU time the server had used by its first correct answer, per load:
	// unlike the wall-clock time, it hardly moves when other processes
	// compete for the core.
	FileLoadCPU, StoreLoadCPU []time.Duration
	StoreMem                  *Memory // Shoestring only: memory after the store restart
	// StoreErr is why the restart from the store failed; the row's other
	// numbers still stand.
	StoreErr error
	Warnings []string
}

// Warnf records something that makes the row's numbers less trustworthy.
func (r *Row) Warnf(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// OK reports whether the row has numbers.
func (r *Row) OK() bool { return r.Err == nil && len(r.Runs) > 0 }

func (r *Row) median(f func(Run) float64) float64 {
	xs := make([]float64, len(r.Runs))
	for i, run := range r.Runs {
		xs[i] = f(run)
	}
	return Median(xs)
}

// CPUPerQuery is the median over runs of server CPU µs per query.
func (r *Row) CPUPerQuery() float64 { return r.median(Run.MicrosPerQuery) }

// Spread is the half-range of µs/query over runs relative to the median:
// how far apart repeated runs were, a direct read of the noise.
func (r *Row) Spread() float64 {
	if len(r.Runs) < 2 {
		return 0
	}
	lo, hi := r.Runs[0].MicrosPerQuery(), r.Runs[0].MicrosPerQuery()
	for _, run := range r.Runs[1:] {
		lo, hi = min(lo, run.MicrosPerQuery()), max(hi, run.MicrosPerQuery())
	}
	m := r.CPUPerQuery()
	if m == 0 {
		return 0
	}
	return (hi - lo) / 2 / m
}

func medianDur(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(Median(xs))
}

func mib(kb uint64) string { return fmt.Sprintf("%.1f", float64(kb)/1024) }

func secs(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3fs", medianDur(ds).Seconds())
}

// Print writes the results table, the ratios of ours to each reference
// server, and every warning and error. ours names the row the ratios are
// for; refs the rows they are against.
func Print(w io.Writer, rows []*Row, ours string, refs []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tqps\tlost\tfailed\tresp B\tCPU µs/q\tspread\tsrv CPU\tdnsperf CPU\tother CPU\tRSS MiB\tHWM MiB\tPSS MiB\tprocs\tfile load\tCPU\tstore load\tCPU\t")
	var failed []*Row
	for _, r := range rows {
		if !r.OK() {
			fmt.Fprintf(tw, "%s\tFAILED\t\t\t\t\t\t\t\t\t\t\t\t\t%s\t%s\t%s\t%s\t\n", r.Name,
				secs(r.FileLoad), secs(r.FileLoadCPU), secs(r.StoreLoad), secs(r.StoreLoadCPU))
			failed = append(failed, r)
			continue
		}
		var lost, bad int64
		for _, run := range r.Runs {
			lost += run.Perf.Lost
			bad += run.Perf.Failed()
		}
		spread := "-"
		if len(r.Runs) > 1 {
			spread = fmt.Sprintf("%.1f%%", 100*r.Spread())
		}
		last := r.Runs[len(r.Runs)-1]
		fmt.Fprintf(tw, "%s\t%.0f\t%d\t%d\t%d\t%.2f\t%s\t%.0f%%\t%.0f%%\t%.0f%%\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n",
			r.Name, r.median(func(x Run) float64 { return x.Perf.QPS }), lost, bad, last.Perf.ResponseSize,
			r.CPUPerQuery(), spread,
			100*r.median(Run.ServerUtil), 100*r.median(Run.ClientUtil), 100*r.median(Run.OtherUtil),
			mib(r.Mem.RSS), mib(r.Mem.HWM), mib(r.Mem.PSS), r.Mem.Procs,
			secs(r.FileLoad), secs(r.FileLoadCPU), secs(r.StoreLoad), secs(r.StoreLoadCPU))
	}
	tw.Flush()

	byName := map[string]*Row{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	if o := byName[ours]; o != nil && o.OK() {
		for _, name := range refs {
			ref := byName[name]
			if ref == nil || !ref.OK() {
				continue
			}
			fmt.Fprintf(w, "\n%s/%s: CPU per query %s, RSS %s, PSS %s, file load %s (CPU %s)",
				ours, name, ratio(o.CPUPerQuery(), ref.CPUPerQuery()),
				ratio(float64(o.Mem.RSS), float64(ref.Mem.RSS)),
				ratio(float64(o.Mem.PSS), float64(ref.Mem.PSS)),
				ratio(medianDur(o.FileLoad).Seconds(), medianDur(ref.FileLoad).Seconds()),
				ratio(medianDur(o.FileLoadCPU).Seconds(), medianDur(ref.FileLoadCPU).Seconds()))
			if p := pairedRatios(o.FileLoad, ref.FileLoad); p != "" {
				fmt.Fprintf(w, "\n%s/%s: file load round by round %s", ours, name, p)
			}
		}
		fmt.Fprintln(w)
	}

	var notes []string
	for _, r := range rows {
		if len(r.FileLoad) > 1 {
			notes = append(notes, fmt.Sprintf("%s: file load samples %s (CPU %s)", r.Name, durs(r.FileLoad), durs(r.FileLoadCPU)))
		}
		if len(r.StoreLoad) > 0 {
			notes = append(notes, fmt.Sprintf("%s: store load samples %s (CPU %s)", r.Name, durs(r.StoreLoad), durs(r.StoreLoadCPU)))
		}
		if r.StoreMem != nil {
			notes = append(notes, fmt.Sprintf("%s: after restart from the store, before any query: RSS %s MiB, HWM %s MiB, PSS %s MiB",
				r.Name, mib(r.StoreMem.RSS), mib(r.StoreMem.HWM), mib(r.StoreMem.PSS)))
		}
		if len(r.Runs) > 1 {
			var us []string
			for _, run := range r.Runs {
				us = append(us, fmt.Sprintf("%.2f", run.MicrosPerQuery()))
			}
			notes = append(notes, fmt.Sprintf("%s: µs/query per run %s", r.Name, strings.Join(us, " ")))
		}
		// One line for all runs: how busy the machine was is one fact.
		var noisy int
		var worst, steal float64
		for _, run := range r.Runs {
			if u := run.OtherUtil(); u > 0.05 {
				noisy++
				worst = max(worst, u)
			}
			steal = max(steal, run.Steal.Seconds()/max(run.Perf.RunTime, 1e-9))
		}
		if noisy > 0 {
			notes = append(notes, fmt.Sprintf("%s: WARNING: in %d of %d runs other processes used the benchmark cores (up to %.0f%% of a core): expect noise",
				r.Name, noisy, len(r.Runs), 100*worst))
		}
		if steal > 0.02 {
			notes = append(notes, fmt.Sprintf("%s: WARNING: the hypervisor stole up to %.0f%% of a core during a run: expect noise", r.Name, 100*steal))
		}
		for _, wn := range r.Warnings {
			notes = append(notes, fmt.Sprintf("%s: WARNING: %s", r.Name, wn))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	for _, r := range failed {
		err := r.Err
		if err == nil {
			err = fmt.Errorf("no measured runs")
		}
		fmt.Fprintf(w, "\n%s FAILED: %v\n", r.Name, err)
	}
	for _, r := range rows {
		if r.StoreErr != nil {
			fmt.Fprintf(w, "\n%s restart from the store FAILED: %v\n", r.Name, r.StoreErr)
		}
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func durs(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.3fs", d.Seconds())
	}
	return strings.Join(s, " ")
}

// ExpectedNX is the NXDOMAIN share the query file should produce.
func ExpectedNX(m Mix) float64 {
	total := 0
	for _, w := range m {
		total += w
	}
	if total == 0 {
		return 0
	}
	return float64(m[KindNX]) / float64(total)
}

// CheckRun warns when a run's answers do not look like the query mix:
// any rcode other than NOERROR/NXDOMAIN, or an NXDOMAIN share off by more
// than a point (dnsperf may stop mid-file, so it is never exact).
func CheckRun(r *Row, run Run, mix Mix) {
	p := run.Perf
	if p.Completed == 0 {
		r.Warnf("no query answered")
		return
	}
	if bad := p.Failed(); bad > 0 {
		var other []string
		for _, k := range slices.Sorted(maps.Keys(p.Rcodes)) {
			if k != "NOERROR" && k != "NXDOMAIN" {
				other = append(other, fmt.Sprintf("%s %d", k, p.Rcodes[k]))
			}
		}
		r.Warnf("%d answers with unexpected rcodes: %s", bad, strings.Join(other, ", "))
	}
	share := float64(p.Rcodes["NXDOMAIN"]) / float64(p.Completed)
	if want := ExpectedNX(mix); share < want-0.01 || share > want+0.01 {
		r.Warnf("NXDOMAIN share %.1f%%, query mix has %.1f%%", 100*share, 100*want)
	}
	if p.Lost > 0 {
		r.Warnf("%d of %d queries lost (%.2f%%); %d dropped by the kernel at the server's sockets (receive buffer full)", p.Lost, p.Sent, 100*float64(p.Lost)/float64(max(p.Sent, 1)), run.SocketDrops)
	} else if run.SocketDrops > 0 {
		r.Warnf("%d datagrams dropped by the kernel at the server's sockets (receive buffer full), all retried or answered late", run.SocketDrops)
	}
}

// pairedRatios is a/b for each load round, the servers having started
// one after the other in it, and their median: steadier than the ratio
// of medians when the machine's speed drifts between rounds. "" unless
// both have more than one round, and as many.
func pairedRatios(a, b []time.Duration) string {
	if len(a) < 2 || len(a) != len(b) {
		return ""
	}
	var rs []float64
	var parts []string
	for i := range a {
		if b[i] <= 0 {
			return ""
		}
		r := a[i].Seconds() / b[i].Seconds()
		rs = append(rs, r)
		parts = append(parts, fmt.Sprintf("%.2fx", r))
	}
	slices.Sort(rs)
	return fmt.Sprintf("%s (median %.2fx)", strings.Join(parts, " "), rs[(len(rs)-1)/2])
}
