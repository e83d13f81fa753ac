package refserver

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

// KnotConfig is a Knot DNS (knotd) listening on 127.0.0.1.
type KnotConfig struct {
	Port  int // 0: a free one (StartKnot); Write needs it set
	Zones []Zone
	// Zone transfers and NOTIFY are allowed from 127.0.0.1 (signed with
	// Key when set) unless RefuseTransfers, which leaves Knot refusing
	// them as it does by default.
	RefuseTransfers bool
	// Catalog is the origin of a catalog zone Knot generates from the
	// zones marked Member.
	Catalog string
	Notify  string // host:port of a secondary to notify of changes
	// NotifyVia is the source address of those NOTIFYs; empty: the
	// kernel's choice (for a secondary on a local address, that
	// address itself).
	NotifyVia string
	// Key signs transfers and NOTIFY, and is required of clients.
	Key *Key
	// Identity, when set, is the NSID and the id.server answer, and
	// version.bind is refused.
	Identity string
	// Workers, when set, is the number of UDP, TCP and background workers
	// each (the benchmark holds every server to one).
	Workers int
	// Journal keeps zone changes so that Knot serves IXFR; without it
	// Knot does no more work than NSD to load and serve a file.
	Journal bool
	// SemanticChecks makes Knot refuse zones that fail its checks.
	SemanticChecks bool
	// Editable runs Knot from a configuration database (imported with
	// knotc), so that zones can be added and removed at run time with
	// knotc, the way an operator adds a catalog member.
	Editable bool
	// RRL, when set, loads the rrl module for every zone (Knot groups
	// IPv4 sources by /24 and has no window setting).
	RRL *RRL
}

// RRL is response rate limiting for a reference server, in the terms
// NSD and Knot share: replies per second per client prefix and response
// class, and slip (every Nth limited reply goes out truncated; 0 drops
// them all).
type RRL struct {
	ResponsesPerSecond int
	Slip               int
}

// Knot is a running knotd.
type Knot struct {
	*Server
	Sock string // its control socket, for knotc
}

// Write writes Knot's configuration (and the zones given as Text) into
// dir and returns knotd's command line.
func (c KnotConfig) Write(dir string) ([]string, error) {
	knotd, err := prepare("knotd", c.Port, dir, "run", "db", "zones")
	if err != nil {
		return nil, err
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "server:\n    rundir: %q\n    listen: 127.0.0.1@%d\n", filepath.Join(dir, "run"), c.Port)
	if c.Identity != "" {
		fmt.Fprintf(&conf, "    nsid: %s\n    identity: %s\n    version: \"\"\n", c.Identity, c.Identity)
	}
	if c.Workers > 0 {
		fmt.Fprintf(&conf, "    udp-workers: %d\n    tcp-workers: %d\n    background-workers: %d\n", c.Workers, c.Workers, c.Workers)
	}
	fmt.Fprintf(&conf, `database:
    storage: %q
control:
    listen: %q
log:
  - target: stderr
    any: info
`, filepath.Join(dir, "db"), knotSock(dir))
	keyRef := ""
	if c.Key != nil {
		fmt.Fprintf(&conf, "key:\n  - id: %s\n    algorithm: %s\n    secret: %s\n", c.Key.Name, c.Key.Algorithm, c.Key.Secret)
		keyRef = "\n    key: " + c.Key.Name
	}
	var remotes strings.Builder
	for i, z := range c.Zones {
		if z.Primary != "" {
			fmt.Fprintf(&remotes, "  - id: m%d\n    address: %s%s\n", i, hostAt(z.Primary), keyRef)
		}
	}
	if c.Notify != "" {
		via := ""
		if c.NotifyVia != "" {
			via = "\n    via: " + c.NotifyVia
		}
		fmt.Fprintf(&remotes, "  - id: downstream\n    address: %s%s%s\n", hostAt(c.Notify), keyRef, via)
	}
	if remotes.Len() > 0 {
		conf.WriteString("remote:\n" + remotes.String())
	}
	if !c.RefuseTransfers {
		fmt.Fprintf(&conf, "acl:\n  - id: xfr\n    address: 127.0.0.1\n    action: [transfer, notify]%s\n", keyRef)
	}
	journal, checks := "none", "off"
	if c.Journal {
		journal = "changes"
	}
	if c.SemanticChecks {
		checks = "on"
	}
	if c.RRL != nil {
		fmt.Fprintf(&conf, "mod-rrl:\n  - id: bench\n    rate-limit: %d\n    slip: %d\n", c.RRL.ResponsesPerSecond, c.RRL.Slip)
	}
	fmt.Fprintf(&conf, `template:
  - id: default
    storage: %q
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: %s
    semantic-checks: %s
    dnssec-signing: off
`, filepath.Join(dir, "zones"), journal, checks)
	if !c.RefuseTransfers {
		conf.WriteString("    acl: xfr\n")
	}
	if c.RRL != nil {
		conf.WriteString("    global-module: mod-rrl/bench\n")
	}
	if c.Notify != "" {
		conf.WriteString("    notify: downstream\n")
	}
	conf.WriteString("zone:\n")
	if c.Catalog != "" {
		fmt.Fprintf(&conf, "  - domain: %q\n    catalog-role: generate\n", c.Catalog)
	}
	for i, z := range c.Zones {
		fmt.Fprintf(&conf, "  - domain: %q\n", z.Origin)
		if z.Primary != "" {
			fmt.Fprintf(&conf, "    master: m%d\n", i)
			continue
		}
		file, err := zoneFile(filepath.Join(dir, "zones"), z)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&conf, "    file: %q\n", file)
		if z.Member {
			fmt.Fprintf(&conf, "    catalog-role: member\n    catalog-zone: %q\n", c.Catalog)
		}
	}
	cf := filepath.Join(dir, "knot.conf")
	if err := WriteFile(cf, conf.String()); err != nil {
		return nil, err
	}
	if !c.Editable {
		return []string{knotd, "-c", cf}, nil
	}
	knotc, err := testenv.LookTool("knotc")
	if err != nil {
		return nil, err
	}
	confdb := filepath.Join(dir, "confdb")
	if out, err := exec.Command(knotc, "-C", confdb, "conf-import", cf).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("knotc conf-import: %v\n%s\n--- config ---\n%s", err, out, conf.String())
	}
	return []string{knotd, "-C", confdb}, nil
}

func knotSock(dir string) string { return filepath.Join(dir, "run", "knot.sock") }

// StartKnot runs Knot for a test in a directory of its own, and waits
// until it serves every zone it is the primary of. It skips the test when
// Knot is not installed (fails under CI=true), fails it with Knot's log
// when Knot does not come up, and stops Knot when the test ends.
func StartKnot(t testing.TB, c KnotConfig) *Knot {
	t.Helper()
	testenv.RequireTool(t, "knotd")
	if c.Editable {
		testenv.RequireTool(t, "knotc")
	}
	s := start(t, "knot", "", &c.Port, func(dir string) ([]string, error) { return c.Write(dir) }, primaryZones(c.Zones))
	return &Knot{Server: s, Sock: knotSock(s.Dir)}
}

// Ctl runs knotc against this Knot, one command per argument list, and
// fails the test on the first that fails.
func (k *Knot) Ctl(t testing.TB, cmds ...[]string) {
	t.Helper()
	knotc := testenv.RequireTool(t, "knotc")
	for _, c := range cmds {
		out, err := exec.Command(knotc, append([]string{"-s", k.Sock}, c...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("knotc %s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
}

// ZoneFile is the file a zone given as Text is served from: rewrite it
// (WriteFile) and reload to change the zone.
func (k *Knot) ZoneFile(origin string) string { return filepath.Join(k.Dir, "zones", origin+"zone") }
