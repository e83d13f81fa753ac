package tenant

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The host's own work for its tenants — copying a zone in, starting a
// tenant again after it died, reading its log lines, its BGP updates —
// runs on whichever core the scheduler picks, and a core a tenant was
// pinned to is as good as any: a tenant killed over and over at its
// memory limit then costs the tenant pinned beside it the host's work on
// its behalf, in that tenant's tail latency. tenants.host_cpuset keeps the
// host's threads on the cores it names (the cores no tenant is pinned to,
// on a server that has them), and hands its tenants the cores the host
// had before, within their own cpusets.

// parseCPUs reads a cpuset list ("0-3,6").
func parseCPUs(list string) (unix.CPUSet, error) {
	var set unix.CPUSet
	for _, r := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= len(set)*64 {
			return set, fmt.Errorf("cpu list %q: %q is not a core or a range of cores", list, r)
		}
		for c := a; c <= b; c++ {
			set.Set(c)
		}
	}
	return set, nil
}

// formatCPUs writes a set as a cpuset list.
func formatCPUs(set unix.CPUSet) string {
	var parts []string
	for c := 0; c < len(set)*64; c++ {
		if !set.IsSet(c) {
			continue
		}
		end := c
		for end+1 < len(set)*64 && set.IsSet(end+1) {
			end++
		}
		if end == c {
			parts = append(parts, strconv.Itoa(c))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", c, end))
		}
		c = end
	}
	return strings.Join(parts, ",")
}

// confineHost keeps every thread of this process, and so every thread it
// starts later (a thread inherits its creator's affinity), on the cores
// list names. It returns the cores the process had before: its tenants'.
func confineHost(list string) (before unix.CPUSet, err error) {
	want, err := parseCPUs(list)
	if err != nil {
		return before, err
	}
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		return before, fmt.Errorf("host_cpuset: %w", err)
	}
	var both unix.CPUSet
	for i := range both {
		both[i] = want[i] & before[i]
	}
	if both.Count() == 0 {
		return before, fmt.Errorf("host_cpuset %q: none of these cores is one this process may run on (%s)", list, formatCPUs(before))
	}
	return before, SetProcessAffinity(&both)
}

// widenTenant gives the calling thread the cores list names (the host's
// before it confined itself); the kernel keeps them within the tenant's
// cpuset. Init calls it on the thread it is locked to and that executes
// the tenant's server: after exec that thread is the process's only one,
// and every thread the server starts inherits its affinity. (Init cannot
// set its other threads': they are named in /proc by their ids in the
// host's PID namespace, not in the tenant's, which sched_setaffinity
// takes.)
func widenTenant(list string) error {
	set, err := parseCPUs(list)
	if err != nil {
		return err
	}
	return unix.SchedSetaffinity(0, &set)
}

// SetProcessAffinity sets the affinity of each of this process's
// threads (threads made later inherit it); sched_setaffinity is a
// thread's, not a process's.
func SetProcessAffinity(set *unix.CPUSet) error {
	// Twice: a thread the runtime started during the first pass took
	// its creator's old affinity.
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, task := range tasks {
			tid, err := strconv.Atoi(task.Name())
			if err != nil {
				continue
			}
			// A thread that ended meanwhile is no error.
			if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("thread %d: %w", tid, err)
			}
		}
	}
	return nil
}
