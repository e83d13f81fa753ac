package tenant

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Limits are what a tenant's cgroup allows it.
type Limits struct {
	CPU      float64 // cores' worth of time; 0: no limit
	MemoryMB int     // 0: no limit
	Pids     int     // 0: no limit
	Cpuset   string  // cores; "": any
}

// cgroups is the tenants' parent cgroup on whichever cgroup version the
// host gives its controllers: v2 where the unified hierarchy has them (a
// Debian server under systemd, our PID 1, which mounts cgroup2 itself),
// v1 where a host still keeps them on v1 hierarchies. The host's cgroup
// mounts are never changed: the tenants' cgroups are made below the
// host's own cgroup.
type cgroups interface {
	// Version is "v1" or "v2".
	Version() string
	// Controllers are the limits this host can enforce (cpu, memory,
	// pids, cpuset); a missing one is reported, not fatal.
	Controllers() []string
	// Create makes (or reuses) the cgroup of tenant name with limits.
	Create(name string, l Limits) (group, error)
}

// group is one tenant's cgroup.
type group interface {
	// Add moves a process into it.
	Add(pid int) error
	// OOMKills counts processes the kernel killed for the memory limit.
	OOMKills() int
	// Remove deletes it; it must hold no process.
	Remove() error
	// Paths are its directories (one per v1 hierarchy).
	Paths() []string
}

// wanted are the controllers a tenant's limits use.
var wanted = []string{"cpu", "memory", "pids", "cpuset"}

// openCgroups finds the controllers and makes the tenants' parent cgroup,
// parent, below the host's own.
func openCgroups(parent string) (cgroups, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	if v2, ok := mounts["cgroup2"]; ok {
		if b, err := os.ReadFile(filepath.Join(v2, "cgroup.controllers")); err == nil && slices.Contains(strings.Fields(string(b)), "memory") {
			c, err := openV2(filepath.Join(v2, own[""]), parent)
			if err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	c, err := openV1(mounts, own, parent)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// cgroupMounts maps each v1 controller to its hierarchy's mount point,
// and "cgroup2" to the unified one's, from /proc/self/mountinfo.
func cgroupMounts() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent dev root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 0 || sep+3 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fields[3] != "/" {
			continue // a bind of part of a hierarchy: not where our cgroup paths start
		}
		switch fields[sep+1] {
		case "cgroup2":
			out["cgroup2"] = fields[4]
		case "cgroup":
			for _, o := range strings.Split(fields[sep+3], ",") {
				if slices.Contains(wanted, o) {
					out[o] = fields[4]
				}
			}
		}
	}
	return out, sc.Err()
}

// ownCgroups maps each v1 controller (and "" for v2) to this process's
// cgroup path, from /proc/self/cgroup.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

// writeFile writes one cgroup setting, naming it in the error.
func writeFile(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("cgroup %s = %q: %w", path, value, err)
	}
	return nil
}
