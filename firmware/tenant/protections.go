package tenant

import (
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Protections are what a tenant process found itself under, checked by
// the process itself once it is sandboxed (not assumed from what the host
// asked for), plus what the host enforces from outside (its cgroup). A
// protection the kernel lacks is reported as off with the reason; the
// tenant still runs.
type Protections struct {
	// Root is what the tenant sees at /: our binary, its data, its /proc.
	Root []string `json:"root"`
	UID  int      `json:"uid"`
	GID  int      `json:"gid"`
	// CapEff is the effective capability set (hex); NoCapabilities when
	// it and the permitted set are empty.
	CapEff         string `json:"cap_eff"`
	NoCapabilities bool   `json:"no_capabilities"`
	NoNewPrivs     bool   `json:"no_new_privs"`
	// Processes is how many processes the tenant sees (its PID namespace
	// holds only its own).
	Processes    int  `json:"processes"`
	PIDNamespace bool `json:"pid_namespace"`
	// BindDenied: an attempt to bind a new socket failed with EPERM.
	BindDenied bool   `json:"bind_denied"`
	Seccomp    string `json:"seccomp"` // "filter" or why not
	// OwnNetwork: it sees no network interface but loopback (its own
	// network namespace); WantNetwork: one was configured for it.
	OwnNetwork  bool `json:"own_network"`
	WantNetwork bool `json:"want_network,omitempty"`
	// Landlock says what file system rules are in force, or why none;
	// WriteOutsideDenied: writing the tenant's own /proc/self/comm,
	// which its uid may, was refused.
	Landlock           string `json:"landlock"`
	WriteOutsideDenied bool   `json:"write_outside_denied"`
	// Filled in by the host.
	Cgroup      string   `json:"cgroup,omitempty"`
	Controllers []string `json:"controllers,omitempty"`
	Missing     []string `json:"missing,omitempty"`
}

// selfCheck looks at the process from inside.
func selfCheck(seccompErr error, landlock string, wantNetwork bool) Protections {
	p := Protections{UID: os.Getuid(), GID: os.Getgid(), Landlock: landlock, WriteOutsideDenied: writeOutsideDenied(), WantNetwork: wantNetwork}
	p.OwnNetwork = onlyLoopback()
	if ents, err := os.ReadDir("/"); err == nil {
		for _, e := range ents {
			p.Root = append(p.Root, e.Name())
		}
	}
	status := procStatus()
	p.CapEff = status["CapEff"]
	p.NoCapabilities = isZeroHex(status["CapEff"]) && isZeroHex(status["CapPrm"])
	p.NoNewPrivs = status["NoNewPrivs"] == "1"
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err == nil {
				p.Processes++
			}
		}
	}
	p.PIDNamespace = os.Getpid() == 1 && p.Processes == 1
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err == nil {
		ln.Close()
	}
	p.BindDenied = errors.Is(err, syscall.EPERM)
	switch {
	case seccompErr != nil:
		p.Seccomp = "off: " + seccompErr.Error()
	case status["Seccomp"] == "2":
		p.Seccomp = "filter"
	default:
		p.Seccomp = "off: Seccomp " + status["Seccomp"]
	}
	return p
}

// onlyLoopback reports whether the process's network namespace has no
// interface but lo, from /proc/net/dev (net.Interfaces would need a
// netlink socket bound, which the seccomp filter refuses).
func onlyLoopback() bool {
	b, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		return false
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 3 {
		return false
	}
	for _, l := range lines[2:] { // two header lines
		name, _, _ := strings.Cut(strings.TrimSpace(l), ":")
		if name != "lo" {
			return false
		}
	}
	return true
}

func procStatus() map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

func isZeroHex(s string) bool {
	return s != "" && strings.Trim(s, "0") == ""
}

// missing lists the protections that are off.
func (p *Protections) missing() []string {
	var out []string
	if !p.NoCapabilities {
		out = append(out, "capabilities: "+p.CapEff)
	}
	if !p.PIDNamespace {
		out = append(out, "pid namespace")
	}
	if !p.BindDenied {
		out = append(out, "bind filter ("+p.Seccomp+")")
	}
	if p.WantNetwork && !p.OwnNetwork {
		out = append(out, "network namespace")
	}
	if !p.WriteOutsideDenied {
		out = append(out, "landlock ("+p.Landlock+")")
	}
	if !slices.Equal(p.Root, []string{"data", "proc", "shoestring"}) {
		out = append(out, "minimal root: sees "+strings.Join(p.Root, " "))
	}
	for _, c := range wanted {
		if !slices.Contains(p.Controllers, c) {
			out = append(out, "cgroup controller "+c)
		}
	}
	return out
}
