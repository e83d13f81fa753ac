package diff

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

// servedZone is one zone every server loads: its origin and the file (the
// same file for all three servers, so signatures and TTLs are identical).
type servedZone struct {
	Origin string
	File   string
}

// server is one running name server under test.
type server struct {
	Name string
	Addr string // 127.0.0.1:port, UDP and TCP

	cmd    *exec.Cmd
	log    *testenv.SyncBuffer
	exited chan struct{}
	err    error // process exit status, valid once exited is closed
}

// freePort returns a port that is free on 127.0.0.1 for both TCP and UDP at
// the moment of the call. Debian starts the system knot and nsd on port 53,
// and other tests run in parallel, so fixed ports are not an option.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		tl.Close()
		if err != nil {
			continue
		}
		ul.Close()
		return port
	}
	t.Fatalf("no port free for both TCP and UDP on 127.0.0.1")
	return 0
}

// startServer runs argv in its own process group, so that NSD's forked
// server and xfrd children are killed along with it, and arranges for all
// of them to be stopped when the test ends.
func startServer(t *testing.T, name, addr string, argv ...string) *server {
	t.Helper()
	s := &server{Name: name, Addr: addr, log: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	// Pdeathsig covers a test binary that dies without running cleanups.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(s.log, "$ %s\n", strings.Join(argv, " "))
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *server) stop() {
	pgid := s.cmd.Process.Pid
	// SIGTERM goes to the main process first, so each daemon shuts down
	// its own way (NSD's main process stops its server and xfrd children).
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
	// Whatever is left of the group (a daemon that ignored SIGTERM, a
	// child that outlived its parent) goes now.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-s.exited
}

// waitReady polls every zone's SOA until the server answers it
// authoritatively; a daemon that exits or never answers fails the test
// with its log, since both Knot and NSD refuse to start (or skip a zone)
// on small configuration or zone errors and say why only there.
func (s *server) waitReady(t *testing.T, zones []servedZone, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, z := range zones {
		q := Query{Name: z.Origin, Type: dns.TypeSOA, EDNS: true, BufSize: 1232}
		for {
			select {
			case <-s.exited:
				t.Fatalf("%s exited before serving zone %s: %v\n--- %s log ---\n%s", s.Name, z.Origin, s.err, s.Name, s.log)
			default:
			}
			out := exchange(s.Addr, q, 300*time.Millisecond)
			if out.Msg != nil && out.Msg.Rcode == dns.RcodeSuccess && out.Msg.Authoritative && len(out.Msg.Answer) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not serve zone %s within %v; last answer to %s SOA:\n%s\n--- %s log ---\n%s",
					s.Name, z.Origin, timeout, z.Origin, out.digString(), s.Name, s.log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// The reference servers are configured alike where it matters for the
// comparison: NSID and identity "diff-test" (Shoestring gets -nsid
// diff-test), version.bind refused, the default 1232-octet UDP limit, and
// no DNSSEC processing of their own (they serve the signed files as-is).
const serverID = "diff-test"

func startKnot(t *testing.T, zones []servedZone) *server {
	t.Helper()
	knotd := testenv.RequireTool(t, "knotd")
	dir := mkdirs(t, "knot", "run", "db", "zones")
	port := freePort(t)
	var conf strings.Builder
	fmt.Fprintf(&conf, `server:
    rundir: %q
    listen: 127.0.0.1@%d
    nsid: %s
    identity: %s
    version: ""
database:
    storage: %q
control:
    listen: %q
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: %q
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: on
    dnssec-signing: off
zone:
`, filepath.Join(dir, "run"), port, serverID, serverID, filepath.Join(dir, "db"),
		filepath.Join(dir, "run", "knot.sock"), filepath.Join(dir, "zones"))
	for _, z := range zones {
		fmt.Fprintf(&conf, "  - domain: %q\n    file: %q\n", z.Origin, z.File)
	}
	cf := filepath.Join(dir, "knot.conf")
	writeFile(t, cf, conf.String())
	s := startServer(t, "knot", "127.0.0.1:"+strconv.Itoa(port), knotd, "-c", cf)
	s.waitReady(t, zones, 20*time.Second)
	return s
}

func startNSD(t *testing.T, zones []servedZone) *server {
	t.Helper()
	nsd := testenv.RequireTool(t, "nsd")
	dir := mkdirs(t, "nsd", "xfr")
	port := freePort(t)
	var conf strings.Builder
	fmt.Fprintf(&conf, `server:
    ip-address: 127.0.0.1@%d
    port: %d
    do-ip4: yes
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: %q
    database: ""
    zonelistfile: %q
    xfrdfile: %q
    xfrdir: %q
    pidfile: %q
    cookie-secret-file: %q
    server-count: 1
    verbosity: 2
    nsid: "ascii_%s"
    identity: %q
    hide-identity: no
    hide-version: yes
remote-control:
    control-enable: no
`, port, port, dir, filepath.Join(dir, "zone.list"), filepath.Join(dir, "xfrd.state"),
		filepath.Join(dir, "xfr"), filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "cookiesecrets.txt"),
		serverID, serverID)
	for _, z := range zones {
		fmt.Fprintf(&conf, "zone:\n    name: %q\n    zonefile: %q\n", z.Origin, z.File)
	}
	cf := filepath.Join(dir, "nsd.conf")
	writeFile(t, cf, conf.String())
	s := startServer(t, "nsd", "127.0.0.1:"+strconv.Itoa(port), nsd, "-d", "-c", cf)
	s.waitReady(t, zones, 20*time.Second)
	return s
}

// startShoestring runs the firmware binary in dev mode. The binary is
// built by testenv.Binary unless SHOESTRING_DIFF_BINARY names one; a build
// error or a binary that does not come up fails the test with its output
// rather than producing a wall of mismatches.
func startShoestring(t *testing.T, zones []servedZone) *server {
	t.Helper()
	t.Log("starting shoestring (SHOESTRING_DIFF_REFS_ONLY=1 compares knot with nsd only)")
	bin := os.Getenv("SHOESTRING_DIFF_BINARY")
	if bin == "" {
		bin = testenv.Binary(t)
	}
	dir := mkdirs(t, "shoestring", "data")
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	argv := []string{bin, "dev", "-data", filepath.Join(dir, "data"), "-listen", addr,
		"-http", "127.0.0.1:0", "-nsid", serverID}
	for _, z := range zones {
		argv = append(argv, "-zone", z.Origin+"="+z.File)
	}
	s := startServer(t, "shoestring", addr, argv...)
	s.waitReady(t, zones, 20*time.Second)
	return s
}

// mkdirs makes a directory for one server under the test's temp dir, with
// the given subdirectories.
func mkdirs(t *testing.T, name string, subs ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	for _, d := range append([]string{""}, subs...) {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
