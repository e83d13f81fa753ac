package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// LookTool finds an executable on PATH or in the sbin directories Debian
// installs daemons into (testenv.LookTool).
func LookTool(name string) (string, error) { return testenv.LookTool(name) }

// Proc is one server process started by Start (package refserver's): in
// its own process group, so that Stop also reaches the children NSD forks;
// its output goes to its LogFile.
type Proc = refserver.Proc

// Pin says which core a benchmark process runs on.
type Pin struct {
	Taskset string // path of taskset(1)
	CPU     int    // the one core the process (and all its threads) may use
	// Pre, when set, comes before taskset: `nsenter --net=NS --` to run
	// the process in another network namespace (-tenants).
	Pre []string
}

// Prefix is the taskset command line that runs a program on the core.
// taskset execs the program in place, so the pid of the wrapped command is
// the pid of the program itself.
func (p Pin) Prefix() []string {
	return append(slices.Clone(p.Pre), p.Taskset, "-c", strconv.Itoa(p.CPU))
}

// Command wraps argv in taskset.
func (p Pin) Command(argv ...string) (string, []string) {
	pre := p.Prefix()
	return pre[0], append(pre[1:], argv...)
}

// Start runs argv pinned, with env added to the environment and its
// output in logPath. Stop it with Stop (SIGTERM, so that Shoestring
// closes its store cleanly before the restart measurement, then whatever
// is left of its group is killed), or KillAll.
func Start(name string, pin Pin, argv, env []string, logPath string) (*Proc, error) {
	return refserver.Start(refserver.Command{Name: name, Argv: argv, Prefix: pin.Prefix(), Env: env, LogFile: logPath})
}

// KillAll kills every server still running, without grace. For cleanup on
// failure and interrupt.
func KillAll() { refserver.KillAll() }

// procStat is what the benchmark needs from /proc/<pid>/stat.
type procStat struct {
	PPid int
	// Ticks is utime + stime (all threads) + cutime + cstime (children
	// it has reaped), in clock ticks. Summed over a live process tree this
	// counts every process once: live ones by their own times, exited
	// ones (NSD's zone-loading child) in the parent that reaped them.
	Ticks uint64
}

// parseStat parses /proc/<pid>/stat. The command name is in parentheses and
// may itself contain spaces and parentheses, so fields are counted from the
// last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15,
	// cutime 16, cstime 17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat: %d fields after comm", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("stat: %w", err)
	}
	s := procStat{PPid: ppid}
	for _, v := range f[11:15] {
		// cutime and cstime are signed in the kernel's format, never
		// negative in practice.
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return procStat{}, fmt.Errorf("stat: bad time %q", v)
		}
		s.Ticks += uint64(n)
	}
	return s, nil
}

// Tree returns pid and all its descendants. NSD serves from a forked child
// and reloads in another, so its cost is the whole tree's, not the pid's.
func Tree(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	children := map[int][]int{}
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		if s, err := parseStat(b); err == nil {
			children[s.PPid] = append(children[s.PPid], c)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	slices.Sort(out)
	return out
}

// CPUSample is the CPU time a process tree had used at one moment.
type CPUSample struct {
	Pids  []int
	Ticks uint64
}

// SampleCPU sums CPU time over pid's tree. Process-level stat already
// includes every thread, live or exited, so multi-threaded servers (Knot,
// Go) need no per-thread walk.
func SampleCPU(pid int) (CPUSample, error) {
	s := CPUSample{Pids: Tree(pid)}
	for _, p := range s.Pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			if p == pid {
				return s, err
			}
			continue
		}
		st, err := parseStat(b)
		if err != nil {
			return s, err
		}
		s.Ticks += st.Ticks
	}
	return s, nil
}

// ClockTick is the unit of /proc/<pid>/stat times. It comes from the
// kernel's AT_CLKTCK in our auxiliary vector, which is what sysconf
// (_SC_CLK_TCK) reports in C; 100 Hz is every Linux port's USER_HZ and is
// only the fallback.
var ClockTick = func() time.Duration {
	if hz := auxvClockTicks(); hz > 0 {
		return time.Second / time.Duration(hz)
	}
	return 10 * time.Millisecond
}()

func auxvClockTicks() uint64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 0
	}
	const atClkTck = 17
	word := int(unsafe.Sizeof(uintptr(0)))
	get := func(p []byte) uint64 {
		if word == 8 {
			return binary.NativeEndian.Uint64(p)
		}
		return uint64(binary.NativeEndian.Uint32(p))
	}
	for i := 0; i+2*word <= len(b); i += 2 * word {
		if get(b[i:]) == atClkTck {
			return get(b[i+word:])
		}
	}
	return 0
}

// Memory is a process tree's memory, in KiB.
type Memory struct {
	Procs int
	RSS   uint64 // sum of VmRSS
	HWM   uint64 // sum of VmHWM (peak RSS)
	PSS   uint64 // sum of Pss: shared pages split between sharers
}

// SampleMemory reads the memory of pid's tree. For a forking server (NSD)
// summed RSS counts the zone once per process that maps it copy-on-write;
// PSS does not, so both are reported.
func SampleMemory(pid int) (Memory, error) {
	var m Memory
	for _, p := range Tree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			if p == pid {
				return m, err
			}
			continue
		}
		m.Procs++
		m.RSS += statusKB(b, "VmRSS:")
		m.HWM += statusKB(b, "VmHWM:")
		if r, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p)); err == nil {
			m.PSS += statusKB(r, "Pss:")
		}
	}
	return m, nil
}

// statusKB returns the "<key> <n> kB" value from a /proc status-style file.
func statusKB(b []byte, key string) uint64 {
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// Affinity returns, for each thread of pid's tree whose allowed CPUs are not
// exactly want, "pid/tid: list". A server that re-pins its own threads would
// otherwise share dnsperf's core and quietly skew both qps and CPU time.
func Affinity(pid int, want string) []string {
	var bad []string
	for _, p := range Tree(pid) {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", p, t.Name()))
			if err != nil {
				continue
			}
			for line := range strings.SplitSeq(string(b), "\n") {
				if rest, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
					if got := strings.TrimSpace(rest); got != want {
						bad = append(bad, fmt.Sprintf("%d/%s: %s", p, t.Name(), got))
					}
				}
			}
		}
	}
	return bad
}

// CoreSample is the CPU time some cores had spent, from /proc/stat.
type CoreSample struct {
	Busy  uint64 // user + nice + system ticks: time in processes
	Steal uint64 // ticks the hypervisor ran something else
}

// SampleCores sums /proc/stat's counters over the given cores. Interrupt
// and softirq time is left out of Busy: loopback packet delivery lands
// there, and it belongs to the benchmark, not to other load.
func SampleCores(cores []int) (CoreSample, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CoreSample{}, err
	}
	return parseProcStat(b, cores)
}

func parseProcStat(b []byte, cores []int) (CoreSample, error) {
	var s CoreSample
	found := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil || !slices.Contains(cores, n) {
			continue
		}
		var v [8]uint64
		for i := range v {
			v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
		}
		// user nice system idle iowait irq softirq steal
		s.Busy += v[0] + v[1] + v[2]
		s.Steal += v[7]
		found++
	}
	if found != len(cores) {
		return s, fmt.Errorf("/proc/stat: found %d of cores %v", found, cores)
	}
	return s, nil
}
