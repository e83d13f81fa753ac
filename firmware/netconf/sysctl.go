package netconf

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// procSys is where sysctls live; /proc/sys/net is per network namespace,
// so a process in a namespace sets that namespace's values.
const procSys = "/proc/sys"

// sysctl is one kernel setting by its path under procSys.
type sysctl struct {
	path  string // "net/ipv6/conf/eth0/accept_ra"
	value string
}

// dottedPath turns "net.ipv4.ip_nonlocal_bind" into its path. Interface
// names with dots cannot be written in dotted form; the per-link settings
// this package makes itself are built as paths directly.
func dottedPath(name string) string { return strings.ReplaceAll(name, ".", "/") }

// desiredSysctls lists the settings cfg implies, in a fixed order: the
// per-link IPv6 router-advertisement policy first, so that it is in force
// before Apply brings a link up.
func (m *Manager) desiredSysctls() []sysctl {
	var out []sysctl
	for _, l := range m.cfg.Links {
		v := "0"
		if l.AcceptRA {
			v = "1"
		}
		for _, k := range []string{"accept_ra", "autoconf"} {
			out = append(out, sysctl{linkSysctl("ipv6", l.Name, k), v})
		}
		// Removing a link's primary IPv4 address would otherwise take
		// every address of its subnet with it.
		out = append(out, sysctl{linkSysctl("ipv4", l.Name, "promote_secondaries"), "1"})
	}
	if m.cfg.NonlocalBind {
		out = append(out, sysctl{"net/ipv4/ip_nonlocal_bind", "1"}, sysctl{"net/ipv6/ip_nonlocal_bind", "1"})
	}
	names := make([]string, 0, len(m.cfg.Sysctls))
	for k := range m.cfg.Sysctls {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out = append(out, sysctl{dottedPath(k), m.cfg.Sysctls[k]})
	}
	return out
}

// applySysctl writes s if the kernel's value differs; changed reports a
// write. Values are compared with whitespace normalised, because the
// kernel prints multi-value settings with tabs.
func applySysctl(root string, s sysctl) (changed bool, err error) {
	p := filepath.Join(root, s.path)
	if !strings.HasPrefix(filepath.Clean(p), filepath.Clean(root)+"/") {
		return false, fmt.Errorf("sysctl %s: outside %s", s.path, root)
	}
	cur, err := os.ReadFile(p)
	if err != nil {
		return false, fmt.Errorf("sysctl %s: %w", s.path, err)
	}
	if strings.Join(strings.Fields(string(cur)), " ") == strings.Join(strings.Fields(s.value), " ") {
		return false, nil
	}
	if err := os.WriteFile(p, []byte(s.value), 0o644); err != nil {
		return false, fmt.Errorf("sysctl %s = %s: %w", s.path, s.value, err)
	}
	return true, nil
}
