package interop

import (
	"fmt"
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

// The real primaries and secondaries, each configured the way an
// operator would, on a free loopback port with everything in the test's
// temp directory.

// waitSOA waits until addr answers origin's SOA authoritatively.
func waitSOA(t *testing.T, p *proc, addr, origin string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r := ask(addr, origin, dns.TypeSOA); r != nil && r.Rcode == dns.RcodeSuccess && r.Authoritative {
			return
		}
		if !p.running() || time.Now().After(deadline) {
			t.Fatalf("%s does not serve %s:\n%s", p.name, origin, tail(p.log.String(), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nsdServer is NSD as a primary.
type nsdServer struct {
	*proc
	Addr string
	dir  string
}

// startNSD serves zones (origin → text), providing transfers to
// 127.0.0.1 and notifying notify (host:port) of changes.
func startNSD(t *testing.T, zones map[string]string, notify string) *nsdServer {
	t.Helper()
	return startNSDWithKey(t, zones, notify, nil)
}

// startNSDWithKey is startNSD with transfers and NOTIFY signed with key
// (name, algorithm, secret) when it is not nil.
func startNSDWithKey(t *testing.T, zones map[string]string, notify string, key []string) *nsdServer {
	t.Helper()
	bin := testenv.RequireTool(t, "nsd")
	dir := mkdir(t, "nsd", "xfr")
	port := freePort(t)
	s := &nsdServer{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
	var conf strings.Builder
	fmt.Fprintf(&conf, `server:
    ip-address: 127.0.0.1@%d
    port: %d
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
remote-control:
    control-enable: no
`, port, port, dir, filepath.Join(dir, "zone.list"), filepath.Join(dir, "xfrd.state"), filepath.Join(dir, "xfr"),
		filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "cookie"))
	keyName := "NOKEY"
	if key != nil {
		keyName = key[0]
		fmt.Fprintf(&conf, "key:\n    name: %q\n    algorithm: %s\n    secret: %q\n", key[0], key[1], key[2])
	}
	nh, np, _ := strings.Cut(notify, ":")
	for origin, text := range zones {
		file := filepath.Join(dir, origin+"zone")
		writeFile(t, file, text)
		fmt.Fprintf(&conf, "zone:\n    name: %q\n    zonefile: %q\n    provide-xfr: 127.0.0.1 %s\n", origin, file, keyName)
		if notify != "" {
			fmt.Fprintf(&conf, "    notify: %s@%s %s\n", nh, np, keyName)
		}
	}
	cf := filepath.Join(dir, "nsd.conf")
	writeFile(t, cf, conf.String())
	s.proc = startProc(t, "nsd", bin, "-d", "-c", cf)
	for origin := range zones {
		waitSOA(t, s.proc, s.Addr, origin)
	}
	return s
}

// restart starts NSD again on the same config after stop.
func (s *nsdServer) restart(t *testing.T, origin string) {
	t.Helper()
	s.proc = startProc(t, "nsd", s.cmd.Args...)
	waitSOA(t, s.proc, s.Addr, origin)
}

// update rewrites a zone's file and has NSD reload it (SIGHUP), which
// sends NOTIFY to the configured secondary.
func (s *nsdServer) update(t *testing.T, origin, text string) {
	t.Helper()
	writeFile(t, filepath.Join(s.dir, origin+"zone"), text)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// knotServer is Knot DNS, as a primary (optionally generating a catalog)
// or as a secondary.
type knotServer struct {
	*proc
	Addr string
	dir  string
	sock string
}

// knotZone is one zone in Knot's config: served from text as a primary
// (optionally a member of the generated catalog), or as a secondary of
// master.
type knotZone struct {
	Origin string
	Text   string
	Member bool   // listed in the generated catalog
	Master string // host:port: a secondary zone of that primary
}

type knotConfig struct {
	Zones   []knotZone
	Catalog string // origin of a catalog Knot generates from its members
	Notify  string // host:port of a secondary to notify
	// Key signs transfers and NOTIFY with the master, and is required
	// of clients when Knot is the primary (name, algorithm, secret).
	Key []string
	// Port to listen on; 0 picks a free one.
	Port int
}

// startKnot runs knotd from a configuration database (not the text
// file), so that zones can be added and removed at run time through
// knotc the way an operator adds a catalog member.
func startKnot(t *testing.T, kc knotConfig) *knotServer {
	t.Helper()
	knotd := testenv.RequireTool(t, "knotd")
	knotc := testenv.RequireTool(t, "knotc")
	dir := mkdir(t, "knot", "run", "db", "zones", "confdb")
	port := kc.Port
	if port == 0 {
		port = freePort(t)
	}
	k := &knotServer{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, sock: filepath.Join(dir, "run", "knot.sock")}
	var conf strings.Builder
	fmt.Fprintf(&conf, `server:
    rundir: %q
    listen: 127.0.0.1@%d
database:
    storage: %q
control:
    listen: %q
log:
  - target: stderr
    any: info
`, filepath.Join(dir, "run"), port, filepath.Join(dir, "db"), k.sock)
	keyRef := ""
	if len(kc.Key) == 3 {
		fmt.Fprintf(&conf, "key:\n  - id: %s\n    algorithm: %s\n    secret: %s\n", kc.Key[0], kc.Key[1], kc.Key[2])
		keyRef = "\n    key: " + kc.Key[0]
	}
	var remotes strings.Builder
	for i, z := range kc.Zones {
		if z.Master != "" {
			fmt.Fprintf(&remotes, "  - id: m%d\n    address: %s%s\n", i, knotAddr(z.Master), keyRef)
		}
	}
	if kc.Notify != "" {
		fmt.Fprintf(&remotes, "  - id: downstream\n    address: %s%s\n", knotAddr(kc.Notify), keyRef)
	}
	if remotes.Len() > 0 {
		conf.WriteString("remote:\n" + remotes.String())
	}
	fmt.Fprintf(&conf, "acl:\n  - id: xfr\n    address: 127.0.0.1\n    action: [transfer, notify]%s\n", keyRef)
	fmt.Fprintf(&conf, `template:
  - id: default
    storage: %q
    zonefile-sync: -1
    journal-content: changes
    semantic-checks: off
    acl: xfr
`, filepath.Join(dir, "zones"))
	if kc.Notify != "" {
		conf.WriteString("    notify: downstream\n")
	}
	conf.WriteString("zone:\n")
	if kc.Catalog != "" {
		fmt.Fprintf(&conf, "  - domain: %s\n    catalog-role: generate\n", kc.Catalog)
	}
	for i, z := range kc.Zones {
		fmt.Fprintf(&conf, "  - domain: %s\n", z.Origin)
		if z.Master != "" {
			fmt.Fprintf(&conf, "    master: m%d\n", i)
			continue
		}
		writeFile(t, filepath.Join(dir, "zones", z.Origin+"zone"), z.Text)
		fmt.Fprintf(&conf, "    file: %s\n", z.Origin+"zone")
		if z.Member {
			fmt.Fprintf(&conf, "    catalog-role: member\n    catalog-zone: %s\n", kc.Catalog)
		}
	}
	cf := filepath.Join(dir, "knot.conf")
	writeFile(t, cf, conf.String())
	confdb := filepath.Join(dir, "confdb")
	if out, err := exec.Command(knotc, "-C", confdb, "conf-import", cf).CombinedOutput(); err != nil {
		t.Fatalf("knotc conf-import: %v\n%s\n--- config ---\n%s", err, out, conf.String())
	}
	k.proc = startProc(t, "knot", knotd, "-C", confdb)
	for _, z := range kc.Zones {
		if z.Master == "" {
			waitSOA(t, k.proc, k.Addr, z.Origin)
		}
	}
	return k
}

// knotAddr turns host:port into Knot's host@port.
func knotAddr(hp string) string {
	h, p, _ := strings.Cut(hp, ":")
	return h + "@" + p
}

// ctl runs knotc against this Knot; each argument list is one command.
func (k *knotServer) ctl(t *testing.T, cmds ...[]string) {
	t.Helper()
	knotc := testenv.RequireTool(t, "knotc")
	for _, c := range cmds {
		out, err := exec.Command(knotc, append([]string{"-s", k.sock}, c...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("knotc %s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
}

// addMember adds a zone to Knot as a member of its generated catalog.
func (k *knotServer) addMember(t *testing.T, origin, catalog, text string) {
	t.Helper()
	writeFile(t, filepath.Join(k.dir, "zones", origin+"zone"), text)
	z := "zone[" + origin + "]"
	k.ctl(t, []string{"conf-begin"}, []string{"conf-set", z}, []string{"conf-set", z + ".file", origin + "zone"},
		[]string{"conf-set", z + ".catalog-role", "member"}, []string{"conf-set", z + ".catalog-zone", catalog},
		[]string{"conf-commit"})
}

// removeZone removes a zone from Knot (and from its generated catalog).
func (k *knotServer) removeZone(t *testing.T, origin string) {
	t.Helper()
	k.ctl(t, []string{"conf-begin"}, []string{"conf-unset", "zone[" + origin + "]"}, []string{"conf-commit"})
}

// set changes one record set through a zone transaction: Knot bumps the
// serial, journals the change (so it serves IXFR) and sends NOTIFY.
func (k *knotServer) set(t *testing.T, origin, owner, ttl, rtype, data string) {
	t.Helper()
	k.ctl(t, []string{"zone-begin", origin}, []string{"zone-unset", origin, owner, rtype},
		[]string{"zone-set", origin, owner, ttl, rtype, data}, []string{"zone-commit", origin})
}

// add adds records in one zone transaction; each is "owner ttl type data".
func (k *knotServer) add(t *testing.T, origin string, records ...string) {
	t.Helper()
	cmds := [][]string{{"zone-begin", origin}}
	for _, r := range records {
		cmds = append(cmds, append([]string{"zone-set", origin}, strings.Fields(r)...))
	}
	k.ctl(t, append(cmds, []string{"zone-commit", origin})...)
}

// bindServer is BIND's named as a primary.
type bindServer struct {
	*proc
	Addr string
	dir  string
}

// startBIND serves one zone, transfers only to requests signed with key
// (name, algorithm, secret), computes IXFR from zone file differences,
// and sends signed NOTIFY to notify.
func startBIND(t *testing.T, origin, text string, key []string, notify string) *bindServer {
	t.Helper()
	named := testenv.RequireTool(t, "named")
	dir := mkdir(t, "bind")
	port := freePort(t)
	b := &bindServer{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
	writeFile(t, filepath.Join(dir, "zone.db"), text)
	nh, np, _ := strings.Cut(notify, ":")
	conf := fmt.Sprintf(`key %q { algorithm %s; secret %q; };
options {
    directory %q;
    listen-on port %d { 127.0.0.1; };
    listen-on-v6 { none; };
    pid-file %q;
    session-keyfile %q;
    recursion no;
    dnssec-validation no;
    notify explicit;
};
controls { };
zone %q {
    type primary;
    file "zone.db";
    allow-transfer { key %q; };
    also-notify { %s port %s key %q; };
    ixfr-from-differences yes;
    max-ixfr-ratio unlimited;
    notify-delay 0;
};
`, key[0], key[1], key[2], dir, port, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"),
		origin, key[0], nh, np, key[0])
	cf := filepath.Join(dir, "named.conf")
	writeFile(t, cf, conf)
	b.proc = startProc(t, "bind", named, "-g", "-n", "1", "-c", cf)
	waitSOA(t, b.proc, b.Addr, origin)
	return b
}

// update rewrites the zone file and has named reload it (SIGHUP).
func (b *bindServer) update(t *testing.T, text string) {
	t.Helper()
	writeFile(t, filepath.Join(b.dir, "zone.db"), text)
	pid, err := os.ReadFile(filepath.Join(b.dir, "named.pid"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err := syscall.Kill(p, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}
