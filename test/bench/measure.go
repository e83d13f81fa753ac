package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Run is one measured dnsperf run against one server.
type Run struct {
	Perf PerfResult
	// ServerCPU is the server tree's utime+stime from just before dnsperf
	// started to just after it exited. The server is idle outside dnsperf's
	// run, so this is the CPU its queries cost, without the guesswork of
	// aligning a sampling window with dnsperf's own.
	ServerCPU time.Duration
	Wall      time.Duration // the same window in wall-clock time
	// OtherCPU is CPU time other processes used on the two benchmark cores
	// during the window, and Steal what the hypervisor took from them:
	// both zero on a quiet machine, and the first thing to look at when
	// numbers move between runs.
	OtherCPU, Steal time.Duration
	// TreeChanged is set when the server's processes were not the same
	// at both ends of the window (a CPU time of an exited process is lost).
	TreeChanged bool
	// SocketDrops counts datagrams the kernel dropped at the server's
	// UDP sockets during the window (receive buffer full): the part of
	// dnsperf's lost queries the server's socket is to blame for.
	SocketDrops uint64
}

// MicrosPerQuery is server CPU per answered query: the figure that does
// not depend on whether dnsperf or the server was the bottleneck.
func (r Run) MicrosPerQuery() float64 {
	if r.Perf.Completed == 0 {
		return 0
	}
	return float64(r.ServerCPU.Microseconds()) / float64(r.Perf.Completed)
}

// ServerUtil is the server's CPU use over dnsperf's run, in cores. Near 1
// the server was the bottleneck; well below, dnsperf was and qps says more
// about dnsperf than about the server.
func (r Run) ServerUtil() float64 {
	if r.Perf.RunTime == 0 {
		return 0
	}
	return r.ServerCPU.Seconds() / r.Perf.RunTime
}

// ClientUtil is dnsperf's own CPU use over its run, in cores.
func (r Run) ClientUtil() float64 {
	if r.Perf.RunTime == 0 {
		return 0
	}
	return r.Perf.ClientCPU.Seconds() / r.Perf.RunTime
}

// OtherUtil is OtherCPU over the run, in cores.
func (r Run) OtherUtil() float64 {
	if r.Perf.RunTime == 0 {
		return 0
	}
	return r.OtherCPU.Seconds() / r.Perf.RunTime
}

// Measure runs dnsperf once against proc's server and charges the server's
// CPU time over exactly that run to the queries dnsperf saw answered.
// cores are the server's and dnsperf's, watched for other load.
func Measure(ctx context.Context, proc *Proc, perf Perf, cores ...int) (Run, error) {
	coresBefore, _ := SampleCores(cores)
	before, err := SampleCPU(proc.Pid())
	if err != nil {
		return Run{}, fmt.Errorf("%s: reading CPU time: %w", proc.Name, err)
	}
	dropsBefore, derr := SocketDrops(perf.Port)
	start := time.Now()
	res, err := perf.Run(ctx)
	wall := time.Since(start)
	dropsAfter, derr2 := SocketDrops(perf.Port)
	after, serr := SampleCPU(proc.Pid())
	coresAfter, cerr := SampleCores(cores)
	if err != nil {
		return Run{}, err
	}
	if proc.Exited() {
		why := exitReason(proc)
		return Run{}, fmt.Errorf("%s died during the run (%v); log %s:\n%s", proc.Name, why, proc.LogFile, indent(proc.Tail(15)))
	}
	if serr != nil {
		return Run{}, fmt.Errorf("%s: reading CPU time: %w", proc.Name, serr)
	}
	r := Run{
		Perf:        res,
		ServerCPU:   time.Duration(after.Ticks-before.Ticks) * ClockTick,
		Wall:        wall,
		TreeChanged: !slices.Equal(before.Pids, after.Pids),
	}
	if derr == nil && derr2 == nil && dropsAfter > dropsBefore {
		r.SocketDrops = dropsAfter - dropsBefore
	}
	if cerr == nil && coresBefore.Busy > 0 {
		busy := time.Duration(coresAfter.Busy-coresBefore.Busy) * ClockTick
		// Clamped: tick sampling makes small negatives on an idle machine.
		r.OtherCPU = max(0, busy-r.ServerCPU-res.ClientCPU)
		r.Steal = time.Duration(coresAfter.Steal-coresBefore.Steal) * ClockTick
	}
	return r, nil
}

// Median returns the median of xs (the mean of the middle two for an even
// count), 0 for none. Medians, not means, so one run disturbed by another
// process on the machine does not move the result.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// SocketDrops sums the kernel's drop counters (/proc/net/udp and udp6,
// last column) of the UDP sockets bound to port.
func SocketDrops(port int) (uint64, error) {
	var total uint64
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			if f == "/proc/net/udp6" {
				continue // no IPv6
			}
			return 0, err
		}
		total += parseSocketDrops(b, port)
	}
	return total, nil
}

func parseSocketDrops(b []byte, port int) uint64 {
	var total uint64
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 13 {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err != nil || int(p) != port {
			continue
		}
		if d, err := strconv.ParseUint(f[12], 10, 64); err == nil {
			total += d
		}
	}
	return total
}
