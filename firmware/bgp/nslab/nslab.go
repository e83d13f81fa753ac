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
// Only test code imports this package.
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
	"time"

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
	removeStale(ip, prefix)
	spk := fmt.Sprintf("%s%d-s", prefix, os.Getpid())
	peer := fmt.Sprintf("%s%d-p", prefix, os.Getpid())
	defer teardown(ip, spk, peer)
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

// teardown kills what runs in the namespaces (processes this run started;
// the namespaces are ours alone) and deletes them.
func teardown(ip string, names ...string) {
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

// removeStale deletes namespaces left by runs whose process died.
func removeStale(ip, prefix string) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", pidStr)); err == nil && syscall.Kill(pid, 0) == nil {
			continue // still running
		}
		teardown(ip, e.Name())
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

// Daemon is a process in the peer namespace.
type Daemon struct {
	Cmd *exec.Cmd
	Log *SyncBuffer // its stdout and stderr
	// Done is closed when it has exited.
	Done chan struct{}
}

// SyncBuffer collects a daemon's output while the test reads it.
type SyncBuffer = testenv.SyncBuffer

// Start runs argv in the peer namespace until the test ends; its output is
// shown if the test fails.
func (l *Lab) Start(t *testing.T, name string, argv ...string) *Daemon {
	t.Helper()
	d := &Daemon{Log: &SyncBuffer{}, Done: make(chan struct{})}
	d.Cmd = exec.Command(l.ip, append([]string{"netns", "exec", l.peerNS}, argv...)...)
	d.Cmd.Stdout, d.Cmd.Stderr = d.Log, d.Log
	// Should the test process die, the kernel kills the daemon too.
	d.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.Cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { d.Cmd.Wait(); close(d.Done) }()
	t.Cleanup(func() {
		d.Cmd.Process.Kill()
		select {
		case <-d.Done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s did not exit", name)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, d.Log.String())
		}
	})
	return d
}

// In runs a command in the peer namespace and returns its output; it fails
// the test if the command fails.
func (l *Lab) In(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := l.Exec(argv...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return out
}

// Exec runs a command in the peer namespace.
func (l *Lab) Exec(argv ...string) (string, error) {
	out, err := exec.Command(l.ip, append([]string{"netns", "exec", l.peerNS}, argv...)...).CombinedOutput()
	return string(out), err
}

// BIRD is a BIRD 2 daemon in the peer namespace.
type BIRD struct {
	*Daemon
	birdc string
	sock  string
}

// StartBIRD runs BIRD with config text until the test ends.
func (l *Lab) StartBIRD(t *testing.T, config string) *BIRD {
	t.Helper()
	birdPath := testenv.RequireTool(t, "bird")
	b := &BIRD{birdc: testenv.RequireTool(t, "birdc")}
	dir := t.TempDir()
	b.sock = filepath.Join(dir, "bird.ctl")
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Daemon = l.Start(t, "bird", birdPath, "-f", "-c", conf, "-s", b.sock)
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case <-b.Done:
			t.Fatalf("BIRD exited:\n%s", b.Log)
		default:
		}
		out, err := exec.Command(b.birdc, "-s", b.sock, "show", "status").CombinedOutput()
		if err == nil && strings.Contains(string(out), "Daemon is up and running") {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("BIRD control socket not up within 5 s:\n%s", b.Log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cmd runs birdc; the control socket is a file, reachable from any
// namespace.
func (b *BIRD) Cmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(b.birdc, append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("birdc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
