package tenant

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// cgroupV2 is one directory in the unified hierarchy. cgroup v2 lets a
// cgroup either hold processes or hand controllers to children, not both,
// so when the host's own cgroup holds processes (a service under systemd)
// the host moves itself into a leaf, DIR/supervisor, first.
type cgroupV2 struct {
	parent      string
	controllers []string
}

func openV2(own, parent string) (*cgroupV2, error) {
	avail, err := os.ReadFile(filepath.Join(own, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroup v2: %w", err)
	}
	var ctls []string
	for _, c := range wanted {
		if slices.Contains(strings.Fields(string(avail)), c) {
			ctls = append(ctls, c)
		}
	}
	enable := "+" + strings.Join(ctls, " +")
	if err := writeFile(filepath.Join(own, "cgroup.subtree_control"), enable); err != nil {
		if !errors.Is(err, syscall.EBUSY) {
			return nil, err
		}
		// Processes in own: move them into a leaf and try again.
		leaf := filepath.Join(own, "supervisor")
		if err := os.MkdirAll(leaf, 0o755); err != nil {
			return nil, err
		}
		b, _ := os.ReadFile(filepath.Join(own, "cgroup.procs"))
		for _, pid := range strings.Fields(string(b)) {
			writeFile(filepath.Join(leaf, "cgroup.procs"), pid) // a process that exited meanwhile is fine
		}
		if err := writeFile(filepath.Join(own, "cgroup.subtree_control"), enable); err != nil {
			return nil, err
		}
	}
	dir := filepath.Join(own, parent)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup v2: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), enable); err != nil {
		return nil, err
	}
	return &cgroupV2{parent: dir, controllers: ctls}, nil
}

func (c *cgroupV2) Version() string       { return "v2" }
func (c *cgroupV2) Controllers() []string { return c.controllers }

func (c *cgroupV2) Create(name string, l Limits) (group, error) {
	dir := filepath.Join(c.parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return nil, fmt.Errorf("cgroup v2: %w", err)
	}
	g := &groupV2{dir: dir}
	set := func(ctl, file, value string) error {
		if !slices.Contains(c.controllers, ctl) {
			return nil
		}
		return writeFile(filepath.Join(dir, file), value)
	}
	cpu, mem, pids := "max 100000", "max", "max"
	if l.CPU > 0 {
		cpu = fmt.Sprintf("%d 100000", int(l.CPU*100000))
	}
	if l.MemoryMB > 0 {
		mem = strconv.Itoa(l.MemoryMB << 20)
	}
	if l.Pids > 0 {
		pids = strconv.Itoa(l.Pids)
	}
	err := errors.Join(set("cpu", "cpu.max", cpu), set("memory", "memory.max", mem), set("pids", "pids.max", pids))
	if err == nil && l.MemoryMB > 0 && fileExists(filepath.Join(dir, "memory.swap.max")) {
		err = writeFile(filepath.Join(dir, "memory.swap.max"), "0")
	}
	if err == nil && l.Cpuset != "" {
		err = set("cpuset", "cpuset.cpus", l.Cpuset)
	}
	if err != nil {
		g.Remove()
		return nil, err
	}
	return g, nil
}

type groupV2 struct{ dir string }

func (g *groupV2) Add(pid int) error {
	return writeFile(filepath.Join(g.dir, "cgroup.procs"), strconv.Itoa(pid))
}

func (g *groupV2) OOMKills() int {
	return keyedValue(filepath.Join(g.dir, "memory.events"), "oom_kill")
}

func (g *groupV2) Remove() error {
	if err := os.Remove(g.dir); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

func (g *groupV2) Paths() []string { return []string{g.dir} }
