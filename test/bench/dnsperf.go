package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// Perf configures one dnsperf run.
type Perf struct {
	Dnsperf     string
	Pin         Pin // the core dnsperf is pinned to
	Addr        string
	Port        int
	QueryFile   string
	Duration    time.Duration
	Clients     int // sockets (source ports); one thread drives them all
	Outstanding int // dnsperf -q: queries in flight
	Timeout     time.Duration
	// Rate, when set, caps dnsperf at that many queries per second (-Q);
	// Passes, when set, runs through the query file that many times (-n)
	// instead of for Duration.
	Rate, Passes int
}

// PerfResult is what dnsperf reported, plus its own CPU time (to tell
// whether dnsperf or the server was the bottleneck).
type PerfResult struct {
	Sent, Completed, Lost int64
	Rcodes                map[string]int64
	RunTime               float64 // seconds, as dnsperf measured it
	QPS                   float64
	ResponseSize          int // average bytes per response
	AvgLatency            float64
	ClientCPU             time.Duration
}

// Failed counts answers that were neither NOERROR nor NXDOMAIN: the zone
// only holds names that give one or the other.
func (r PerfResult) Failed() int64 {
	return r.Completed - r.Rcodes["NOERROR"] - r.Rcodes["NXDOMAIN"]
}

// Run runs dnsperf and parses its statistics. Unlimited rate (-Q unset): it
// sends as fast as answers return, so one core's worth of dnsperf pushes the
// server as hard as it can.
func (p Perf) Run(ctx context.Context) (PerfResult, error) {
	argv := []string{
		p.Dnsperf,
		"-s", p.Addr, "-p", strconv.Itoa(p.Port),
		"-d", p.QueryFile,
		"-c", strconv.Itoa(p.Clients), "-T", "1",
		"-q", strconv.Itoa(p.Outstanding),
		"-t", strconv.FormatFloat(p.Timeout.Seconds(), 'f', -1, 64),
		// One line per lost query would flood the output; the count is in
		// the statistics.
		"-O", "suppress=timeouts",
	}
	if p.Passes > 0 {
		argv = append(argv, "-n", strconv.Itoa(p.Passes))
	} else {
		argv = append(argv, "-l", strconv.FormatFloat(p.Duration.Seconds(), 'f', -1, 64))
	}
	if p.Rate > 0 {
		argv = append(argv, "-Q", strconv.Itoa(p.Rate))
	}
	name, args := p.Pin.Command(argv...)
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return PerfResult{}, ctx.Err()
	}
	if err != nil {
		return PerfResult{}, fmt.Errorf("dnsperf: %v\n%s", err, tail(out.String(), 2000))
	}
	r, err := ParseDnsperf(out.String())
	if err != nil {
		return r, fmt.Errorf("%v\n%s", err, tail(out.String(), 2000))
	}
	if ps := cmd.ProcessState; ps != nil {
		r.ClientCPU = ps.UserTime() + ps.SystemTime()
	}
	return r, nil
}

var (
	reSent      = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	reCompleted = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	reLost      = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	reRcodes    = regexp.MustCompile(`Response codes:\s+(.*)`)
	reRcode     = regexp.MustCompile(`([A-Z0-9]+) (\d+) \(`)
	reRunTime   = regexp.MustCompile(`Run time \(s\):\s+([0-9.]+)`)
	reQPS       = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	reSize      = regexp.MustCompile(`Average packet size:\s+request \d+, response (\d+)`)
	reLatency   = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
)

// ParseDnsperf reads the "Statistics:" block dnsperf prints at the end.
func ParseDnsperf(s string) (PerfResult, error) {
	r := PerfResult{Rcodes: map[string]int64{}}
	num := func(re *regexp.Regexp, required bool) (float64, error) {
		m := re.FindStringSubmatch(s)
		if m == nil {
			if required {
				return 0, fmt.Errorf("dnsperf output has no %q", re.String())
			}
			return 0, nil
		}
		return strconv.ParseFloat(m[1], 64)
	}
	var err error
	var v float64
	if v, err = num(reSent, true); err != nil {
		return r, err
	}
	r.Sent = int64(v)
	if v, err = num(reCompleted, true); err != nil {
		return r, err
	}
	r.Completed = int64(v)
	if v, err = num(reLost, true); err != nil {
		return r, err
	}
	r.Lost = int64(v)
	if r.RunTime, err = num(reRunTime, true); err != nil {
		return r, err
	}
	if r.QPS, err = num(reQPS, true); err != nil {
		return r, err
	}
	if v, err = num(reSize, false); err != nil {
		return r, err
	}
	r.ResponseSize = int(v)
	if r.AvgLatency, err = num(reLatency, false); err != nil {
		return r, err
	}
	// The Response codes line is absent when nothing was answered.
	if m := reRcodes.FindStringSubmatch(s); m != nil {
		for _, c := range reRcode.FindAllStringSubmatch(m[1], -1) {
			n, _ := strconv.ParseInt(c[2], 10, 64)
			r.Rcodes[c[1]] = n
		}
	}
	return r, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
