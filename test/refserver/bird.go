package refserver

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

// RouterTimeout is how long BIRD and gobgpd get to take commands after
// they start.
const RouterTimeout = 10 * time.Second

// RouterConfig is what BIRD and gobgpd are started with.
type RouterConfig struct {
	Config string // bird.conf, gobgpd.toml
	// Dir holds the config file (and BIRD's control socket); the test
	// starters make one when it is empty.
	Dir string
	// Prefix, LogFile and Detached are as in Command: Prefix is how the
	// daemon is run in a network namespace (`ip netns exec NS`).
	Prefix   []string
	LogFile  string
	Detached bool
}

// BIRDConfig is a BIRD 2 daemon.
type BIRDConfig RouterConfig

// GoBGPConfig is a GoBGP daemon (gobgpd) whose API listens on
// 127.0.0.1:50051 of its namespace, the gobgp tool's default.
type GoBGPConfig RouterConfig

// Bird is a running BIRD.
type Bird struct {
	*Proc
	Sock  string // control socket: a file, reachable from any namespace
	birdc string
}

// GoBGP is a running gobgpd.
type GoBGP struct {
	*Proc
	cli []string // gobgp with its prefix
}

// startRouter writes c's config to file in c.Dir, starts the daemon with
// the command line argv makes for that file, and waits until ready (a
// command that works) or RouterTimeout.
func startRouter(name, file string, c RouterConfig, argv func(conf string) []string, ready func() (string, error)) (*Proc, error) {
	if err := mkdirs(c.Dir); err != nil {
		return nil, err
	}
	conf := filepath.Join(c.Dir, file)
	if err := WriteFile(conf, c.Config); err != nil {
		return nil, err
	}
	p, err := Start(Command{Name: name, Argv: argv(conf), Prefix: c.Prefix, LogFile: c.LogFile, Detached: c.Detached})
	if err != nil {
		return nil, err
	}
	for {
		out, err := ready()
		if err == nil {
			return p, nil
		}
		if p.Exited() || time.Since(p.Started) > RouterTimeout {
			p.Kill()
			return nil, fmt.Errorf("%s not up within %v (%v: %s):\n%s", name, RouterTimeout, err, out, p.Tail(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Start writes the config, starts BIRD and waits until it takes commands
// on its control socket. The caller stops it.
func (c BIRDConfig) Start() (*Bird, error) {
	bird, err := testenv.LookTool("bird")
	if err != nil {
		return nil, err
	}
	b := &Bird{Sock: filepath.Join(c.Dir, "bird.ctl")}
	if b.birdc, err = testenv.LookTool("birdc"); err != nil {
		return nil, err
	}
	b.Proc, err = startRouter("bird", "bird.conf", RouterConfig(c), func(conf string) []string {
		return []string{bird, "-f", "-c", conf, "-s", b.Sock}
	}, func() (string, error) {
		out, err := b.Birdc("show", "status")
		if err == nil && !strings.Contains(out, "Daemon is up and running") {
			err = errors.New("BIRD not up")
		}
		return out, err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Start writes the config, starts gobgpd and waits until its API answers.
// The caller stops it.
func (c GoBGPConfig) Start() (*GoBGP, error) {
	daemon, err := testenv.LookTool("gobgpd")
	if err != nil {
		return nil, err
	}
	cli, err := testenv.LookTool("gobgp")
	if err != nil {
		return nil, err
	}
	g := &GoBGP{cli: append(append([]string{}, c.Prefix...), cli, "-p", "50051")}
	g.Proc, err = startRouter("gobgpd", "gobgpd.toml", RouterConfig(c),
		func(conf string) []string {
			return []string{daemon, "-f", conf, "-p", "--api-hosts", "127.0.0.1:50051", "--pprof-disable"}
		},
		func() (string, error) { return g.CLI("global") })
	if err != nil {
		return nil, err
	}
	return g, nil
}

// forTest is what StartBIRD and StartGoBGP share: the programs a test
// needs (a skip without them, a failure under CI=true), a directory of its
// own, and the daemon stopped when the test ends.
func forTest[T interface{ proc() *Proc }](t testing.TB, dir *string, tools []string, start func() (T, error)) T {
	t.Helper()
	for _, tool := range tools {
		testenv.RequireTool(t, tool)
	}
	if *dir == "" {
		*dir = t.TempDir()
	}
	d, err := start()
	if err != nil {
		t.Fatal(err)
	}
	stopWithTest(t, d.proc())
	return d
}

// StartBIRD runs BIRD for a test until it ends; it fails with BIRD's log
// if BIRD does not come up.
func StartBIRD(t testing.TB, c BIRDConfig) *Bird {
	t.Helper()
	return forTest(t, &c.Dir, []string{"bird", "birdc"}, func() (*Bird, error) { return c.Start() })
}

// StartGoBGP runs gobgpd for a test until it ends, like StartBIRD.
func StartGoBGP(t testing.TB, c GoBGPConfig) *GoBGP {
	t.Helper()
	return forTest(t, &c.Dir, []string{"gobgpd", "gobgp"}, func() (*GoBGP, error) { return c.Start() })
}

// Birdc runs a BIRD command.
func (b *Bird) Birdc(args ...string) (string, error) {
	out, err := exec.Command(b.birdc, append([]string{"-s", b.Sock}, args...)...).CombinedOutput()
	if err == nil && strings.Contains(string(out), "Unable to connect") {
		err = errors.New("BIRD not running")
	}
	return string(out), err
}

// Cmd runs a BIRD command for a test, which fails if birdc does.
func (b *Bird) Cmd(t testing.TB, args ...string) string {
	t.Helper()
	out, err := b.Birdc(args...)
	return Must(t, out, err, append([]string{"birdc"}, args...)...)
}

// GoBGPNeighbor is a gobgpd.toml [[neighbors]] entry: a passive session
// with addr (peer AS asn) carrying IPv4 and IPv6 unicast, with a hold time
// of hold seconds (keepalive a third) when hold is not 0.
func GoBGPNeighbor(addr string, asn uint32, hold int) string {
	timers := ""
	if hold > 0 {
		timers = fmt.Sprintf("  [neighbors.timers.config]\n    hold-time = %d\n    keepalive-interval = %d\n", hold, max(hold/3, 1))
	}
	return fmt.Sprintf(`[[neighbors]]
  [neighbors.config]
    neighbor-address = %q
    peer-as = %d
%s  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
`, addr, asn, timers)
}

// CLI runs the gobgp command line tool against this gobgpd (in its
// namespace).
func (g *GoBGP) CLI(args ...string) (string, error) {
	argv := append(append([]string{}, g.cli...), args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}
