package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Callgrind runs a server under valgrind's callgrind to count the
// instructions it executes per query: unlike CPU time, the count does not
// move when other processes share the machine, so ratios between servers
// can be reproduced on a loaded box. It counts user-space instructions
// only — the kernel's share of a query (socket calls, loopback delivery)
// is not in it, and a server that makes fewer system calls per query gains
// more in CPU time than the count shows.
//
// A server that does not fork after it starts (Shoestring, Knot) starts
// with instrumentation off (loading a zone under callgrind takes minutes);
// Start switches it on and zeroes the counters once the server answers,
// Stop dumps what was counted since. A server that answers from forked
// children (NSD) cannot be reached that way: valgrind's control channel
// (vgdb) serves only the first process, and a child's count includes
// what its parent did before the fork. So it runs instrumented from the
// start, Stop stops it and sums every process's profile written at exit,
// and the caller runs it twice, with n and 2n queries: the difference is
// what n queries cost (loading is deterministic C, the same both times).
type Callgrind struct {
	Valgrind string // path of valgrind
	Control  string // path of callgrind_control
	Dir      string // where the profile files go
	Forks    bool   // the server answers from forked children
}

// Wrap returns argv run under callgrind and the environment it needs. Go
// programs need two settings valgrind 3.19 copes with: no RDTSCP (its
// decoder lacks it; the runtime then fences and uses RDTSC) and no
// asynchronous preemption (callgrind's signal bookkeeping asserts on the
// runtime's frequent SIGURGs). Neither changes what a query costs. And
// GOGC=off: loading under valgrind takes minutes, so the collection the
// Go runtime forces every two minutes would land in the counted window,
// where it weighs on 50 times fewer queries than at full speed. Shoestring
// still collects while it loads a zone (it sets its own GC percentage
// for that) and once after; the count is of answering.
func (c *Callgrind) Wrap(argv, env []string) ([]string, []string) {
	out := []string{c.Valgrind, "--tool=callgrind",
		"--instr-atstart=" + map[bool]string{true: "yes", false: "no"}[c.Forks],
		"--callgrind-out-file=" + filepath.Join(c.Dir, "callgrind.%p")}
	out = append(out, argv...)
	env = append(append([]string(nil), env...), "GODEBUG=cpu.rdtscp=off,asyncpreemptoff=1", "GOGC=off")
	return out, env
}

// control runs callgrind_control with args against pid.
func (c *Callgrind) control(ctx context.Context, pid int, args ...string) error {
	cmd := exec.CommandContext(ctx, c.Control, append(args, strconv.Itoa(pid))...)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("OK")) {
		return fmt.Errorf("callgrind_control %s %d: %v: %s", strings.Join(args, " "), pid, err, bytes.TrimSpace(out))
	}
	return nil
}

// Start begins counting in the server whose first process is root.
func (c *Callgrind) Start(ctx context.Context, root int) error {
	if c.Forks {
		return nil
	}
	if err := c.control(ctx, root, "--instr=on"); err != nil {
		return err
	}
	return c.control(ctx, root, "--zero")
}

// Stop returns the instructions counted since Start; for a forking
// server, since it started, over all its processes: it stops the server
// with stop, which must wait for it to exit.
func (c *Callgrind) Stop(ctx context.Context, root int, stop func()) (uint64, error) {
	if !c.Forks {
		return c.dump(ctx, root)
	}
	stop()
	files, _ := filepath.Glob(filepath.Join(c.Dir, "callgrind.*"))
	if len(files) == 0 {
		return 0, fmt.Errorf("no callgrind profile in %s", c.Dir)
	}
	var total uint64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		n, err := CallgrindTotal(b)
		if err != nil {
			return 0, fmt.Errorf("%s (was the process killed before it wrote it?): %w", f, err)
		}
		total += n
	}
	return total, nil
}

// dump has pid write its counts since the last dump or zero (a dump
// zeroes them) and returns them.
func (c *Callgrind) dump(ctx context.Context, pid int) (uint64, error) {
	before, _ := filepath.Glob(filepath.Join(c.Dir, fmt.Sprintf("callgrind.%d.*", pid)))
	if err := c.control(ctx, pid, "--dump"); err != nil {
		return 0, err
	}
	after, _ := filepath.Glob(filepath.Join(c.Dir, fmt.Sprintf("callgrind.%d.*", pid)))
	seen := map[string]bool{}
	for _, f := range before {
		seen[f] = true
	}
	for _, f := range after {
		if seen[f] {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		n, err := CallgrindTotal(b)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("callgrind wrote no profile for pid %d in %s", pid, c.Dir)
}

// CallgrindTotal reads the instruction total from a callgrind profile
// ("totals:", or "summary:" in older files).
func CallgrindTotal(b []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var summary string
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "totals:"); ok {
			return parseFirstCount(v)
		}
		if v, ok := strings.CutPrefix(line, "summary:"); ok {
			summary = v
		}
	}
	if summary != "" {
		return parseFirstCount(summary)
	}
	return 0, fmt.Errorf("no totals line in the callgrind profile")
}

func parseFirstCount(s string) (uint64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, fmt.Errorf("empty totals line")
	}
	return strconv.ParseUint(f[0], 10, 64)
}
