package tenant

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupV1 is one directory per controller hierarchy (cpu, memory, pids,
// cpuset), each below the host's own cgroup in that hierarchy.
type cgroupV1 struct {
	parents map[string]string // controller → the tenants' parent directory
}

func openV1(mounts, own map[string]string, parent string) (*cgroupV1, error) {
	c := &cgroupV1{parents: map[string]string{}}
	for _, ctl := range wanted {
		m, ok := mounts[ctl]
		if !ok {
			continue
		}
		dir := filepath.Join(m, own[ctl], parent)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup v1 %s: %w", ctl, err)
		}
		if ctl == "cpuset" {
			// A new cpuset is empty and takes no process until given
			// its parent's cores and memory nodes.
			if err := inheritCpuset(dir); err != nil {
				return nil, err
			}
		}
		c.parents[ctl] = dir
	}
	if len(c.parents) == 0 {
		return nil, errors.New("cgroup v1: none of cpu, memory, pids, cpuset is mounted")
	}
	return c, nil
}

func inheritCpuset(dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, _ := os.ReadFile(filepath.Join(dir, f))
		if strings.TrimSpace(string(cur)) != "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, f), strings.TrimSpace(string(b))); err != nil {
			return err
		}
	}
	return nil
}

func (c *cgroupV1) Version() string { return "v1" }

func (c *cgroupV1) Controllers() []string {
	var out []string
	for _, ctl := range wanted {
		if _, ok := c.parents[ctl]; ok {
			out = append(out, ctl)
		}
	}
	return out
}

func (c *cgroupV1) Create(name string, l Limits) (group, error) {
	g := &groupV1{dirs: map[string]string{}}
	for ctl, parent := range c.parents {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("cgroup v1 %s: %w", ctl, err)
		}
		g.dirs[ctl] = dir
	}
	if err := g.set(l); err != nil {
		g.Remove()
		return nil, err
	}
	return g, nil
}

type groupV1 struct{ dirs map[string]string }

func (g *groupV1) set(l Limits) error {
	if d, ok := g.dirs["cpu"]; ok {
		quota := "-1"
		if l.CPU > 0 {
			quota = strconv.Itoa(int(l.CPU * 100000))
		}
		if err := writeFile(filepath.Join(d, "cpu.cfs_period_us"), "100000"); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(d, "cpu.cfs_quota_us"), quota); err != nil {
			return err
		}
	}
	if d, ok := g.dirs["memory"]; ok {
		limit := "-1"
		if l.MemoryMB > 0 {
			limit = strconv.Itoa(l.MemoryMB << 20)
		}
		if err := writeFile(filepath.Join(d, "memory.limit_in_bytes"), limit); err != nil {
			return err
		}
		// Swap must not stretch the limit (where the kernel accounts it).
		if sw := filepath.Join(d, "memory.memsw.limit_in_bytes"); fileExists(sw) {
			if err := writeFile(sw, limit); err != nil {
				return err
			}
		}
	}
	if d, ok := g.dirs["pids"]; ok {
		max := "max"
		if l.Pids > 0 {
			max = strconv.Itoa(l.Pids)
		}
		if err := writeFile(filepath.Join(d, "pids.max"), max); err != nil {
			return err
		}
	}
	if d, ok := g.dirs["cpuset"]; ok {
		if err := inheritCpuset(d); err != nil {
			return err
		}
		if l.Cpuset != "" {
			if err := writeFile(filepath.Join(d, "cpuset.cpus"), l.Cpuset); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *groupV1) Add(pid int) error {
	for _, d := range g.dirs {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

func (g *groupV1) OOMKills() int {
	d, ok := g.dirs["memory"]
	if !ok {
		return 0
	}
	return keyedValue(filepath.Join(d, "memory.oom_control"), "oom_kill")
}

func (g *groupV1) Remove() error {
	var errs []error
	for _, d := range g.dirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (g *groupV1) Paths() []string {
	var out []string
	for _, ctl := range wanted {
		if d, ok := g.dirs[ctl]; ok {
			out = append(out, d)
		}
	}
	return out
}

// keyedValue reads "key N" from a cgroup file of such lines; 0 if absent.
func keyedValue(path, key string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == key {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
