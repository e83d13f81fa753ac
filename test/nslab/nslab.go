// Package nslab is the test lab of the routing packages (bgp, bfd): two
// network namespaces joined by a veth pair, so that tests run BGP on port
// 179 and BFD on 3784 against a real BIRD or GoBGP, as in production,
// without binding anything in the machine's own namespace:
//
//	<prefix><pid>-s (the test process): s0 10.79.0.1/24 fd79::1/64
//	<prefix><pid>-p (the daemons):      p0 10.79.0.2/24 fd79::2/64
//
// A Go process cannot move all its threads into a namespace, so Main, run
// from TestMain as root, builds the namespaces and re-executes the test
// binary inside the first with `ip netns exec`; daemons start in the
// second. Main removes both namespaces, and kills what is left in them,
// when the tests end; a run killed outright is cleaned up by the next one.
// Remove and RemoveStale are the namespace clean-up the bigger lab
// (test/lab) uses too, and InNS and PipeTCP the plumbing into
// namespaces every lab shares. Daemons are run by package refserver.
package nslab

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// The lab's addresses.
const (
	SpeakerIP4 = "10.79.0.1"
	SpeakerIP6 = "fd79::1"
	PeerIP4    = "10.79.0.2"
	PeerIP6    = "fd79::2"
	// SpeakerDev and PeerDev are the veth ends.
	SpeakerDev = "s0"
	PeerDev    = "p0"
)

const (
	envLab    = "SHOESTRING_NSLAB"     // peer namespace, set inside the lab
	envLabErr = "SHOESTRING_NSLAB_ERR" // why the lab could not be built
)

// Main runs the tests, inside the lab when running as root. prefix names
// the namespaces (at most 6 characters; one per package, since `go test
// ./...` runs packages in parallel). Use it as
//
//	func TestMain(m *testing.M) { os.Exit(nslab.Main(m, "ssbgp")) }
func Main(m *testing.M, prefix string) int {
	if os.Getenv(envLab) != "" || os.Getenv(envLabErr) != "" || os.Geteuid() != 0 {
		return m.Run()
	}
	ip, err := ipTool()
	if err != nil {
		return rerun("ip (iproute2) not found")
	}
	RemoveStale(prefix)
	spk := fmt.Sprintf("%s%d-s", prefix, os.Getpid())
	peer := fmt.Sprintf("%s%d-p", prefix, os.Getpid())
	defer Remove(spk, peer)
	steps := [][]string{
		{"netns", "add", spk},
		{"netns", "add", peer},
		{"link", "add", SpeakerDev, "netns", spk, "type", "veth", "peer", "name", PeerDev, "netns", peer},
	}
	for _, ns := range []struct{ name, dev, a4, a6 string }{
		{spk, SpeakerDev, SpeakerIP4 + "/24", SpeakerIP6 + "/64"},
		{peer, PeerDev, PeerIP4 + "/24", PeerIP6 + "/64"},
	} {
		steps = append(steps,
			[]string{"-n", ns.name, "link", "set", "lo", "up"},
			[]string{"-n", ns.name, "link", "set", ns.dev, "up"},
			[]string{"-n", ns.name, "addr", "add", ns.a4, "dev", ns.dev},
			// nodad: usable at once, without a second of duplicate detection.
			[]string{"-n", ns.name, "addr", "add", ns.a6, "dev", ns.dev, "nodad"},
		)
	}
	for _, s := range steps {
		if out, err := exec.Command(ip, s...).CombinedOutput(); err != nil {
			return rerun(fmt.Sprintf("ip %s: %v: %s", strings.Join(s, " "), err, out))
		}
	}
	cmd := exec.Command(ip, append([]string{"netns", "exec", spk, os.Args[0]}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envLab+"="+peer)
	// Pass interrupts on, and clean up after the child has gone.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return rerun(err.Error())
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	return exitCode(cmd.Wait())
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nslab:", err)
		return 1
	}
	return 0
}

func ipTool() (string, error) {
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("ip")
}

// rerun runs the tests in a child without the lab; tests that need it
// then report why it is missing.
func rerun(why string) int {
	fmt.Fprintln(os.Stderr, "nslab:", why)
	exe, err := os.Executable()
	if err != nil {
		return 1
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envLabErr+"="+why)
	return exitCode(cmd.Run())
}

// Remove kills what runs in the named namespaces (processes a lab
// started: nothing else runs there) and deletes them.
func Remove(names ...string) {
	ip, err := ipTool()
	if err != nil {
		ip = "ip"
	}
	for _, ns := range names {
		out, _ := exec.Command(ip, "netns", "pids", ns).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		exec.Command(ip, "netns", "del", ns).Run()
	}
}

// RemoveStale removes the namespaces named prefix<pid>-… whose process
// has died (a run killed outright), and what runs in them.
func RemoveStale(prefix string) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", pidStr)); err == nil && syscall.Kill(pid, 0) == nil {
			continue // still running
		}
		Remove(e.Name())
	}
}

// Lab is what a test needs to run things in the peer namespace.
type Lab struct {
	ip     string
	peerNS string
}

// Require returns the lab, or skips the test when not root (failing under
// CI, see testenv).
func Require(t *testing.T) *Lab {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "ip")
	if e := os.Getenv(envLabErr); e != "" {
		t.Fatalf("the test lab could not be built: %s", e)
	}
	ns := os.Getenv(envLab)
	if ns == "" {
		t.Fatal("running as root but outside the test lab: call nslab.Main from TestMain")
	}
	ip, err := ipTool()
	if err != nil {
		t.Fatal(err)
	}
	return &Lab{ip: ip, peerNS: ns}
}

// Prefix is how a command runs in the peer namespace: refserver's
// Command.Prefix and BIRDConfig.Prefix.
func (l *Lab) Prefix() []string { return []string{l.ip, "netns", "exec", l.peerNS} }

// Start runs argv in the peer namespace until the test ends; its output is
// shown if the test fails.
func (l *Lab) Start(t *testing.T, name string, argv ...string) *refserver.Proc {
	t.Helper()
	return refserver.Run(t, refserver.Command{Name: name, Argv: argv, Prefix: l.Prefix()})
}

// In runs a command in the peer namespace and returns its output; it fails
// the test if the command fails.
func (l *Lab) In(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := l.Exec(argv...)
	return refserver.Must(t, out, err, argv...)
}

// Exec runs a command in the peer namespace.
func (l *Lab) Exec(argv ...string) (string, error) {
	out, err := exec.Command(l.ip, append([]string{"netns", "exec", l.peerNS}, argv...)...).CombinedOutput()
	return string(out), err
}

// StartBIRD runs BIRD with config text in the peer namespace until the
// test ends.
func (l *Lab) StartBIRD(t *testing.T, config string) *refserver.Bird {
	t.Helper()
	return refserver.StartBIRD(t, refserver.BIRDConfig{Config: config, Prefix: l.Prefix()})
}

// StartGoBGP runs gobgpd with config text (TOML) in the peer namespace
// until the test ends; its API listens on the namespace's loopback.
func (l *Lab) StartGoBGP(t *testing.T, config string) *refserver.GoBGP {
	t.Helper()
	return refserver.StartGoBGP(t, refserver.GoBGPConfig{Config: config, Prefix: l.Prefix()})
}
