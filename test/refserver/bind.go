package refserver

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

// BINDConfig is ISC BIND's named as a primary on 127.0.0.1: no recursion,
// transfers to 127.0.0.1 (only signed with Key when set), IXFR computed
// from zone file differences, NOTIFY sent at once, only to Notify. With
// Forward set it is a resolver instead, forwarding every query there
// (and sending DNS cookies, as BIND does by default).
type BINDConfig struct {
	Port   int // 0: a free one (StartBIND); Write needs it set
	Zones  []Zone
	Notify string // host:port of a secondary to notify of changes
	Key    *Key
	// Forward is host:port of the only server a resolver asks.
	Forward string
}

// Write writes named's configuration (and the zones given as Text) into
// dir and returns named's command line.
func (c BINDConfig) Write(dir string) ([]string, error) {
	named, err := prepare("named", c.Port, dir)
	if err != nil {
		return nil, err
	}
	var conf strings.Builder
	allow, keyRef := "127.0.0.1;", ""
	if c.Key != nil {
		fmt.Fprintf(&conf, "key %q { algorithm %s; secret %q; };\n", c.Key.Name, c.Key.Algorithm, c.Key.Secret)
		allow, keyRef = fmt.Sprintf("key %q;", c.Key.Name), fmt.Sprintf(" key %q", c.Key.Name)
	}
	role := "    recursion no;\n    notify explicit;\n"
	if c.Forward != "" {
		h, p, err := net.SplitHostPort(c.Forward)
		if err != nil {
			return nil, fmt.Errorf("bind: forward %q: %v", c.Forward, err)
		}
		role = fmt.Sprintf("    recursion yes;\n    allow-query { 127.0.0.1; };\n    allow-recursion { 127.0.0.1; };\n"+
			"    qname-minimization off;\n    forward only;\n    forwarders { %s port %s; };\n    send-cookie yes;\n", h, p)
	}
	fmt.Fprintf(&conf, `options {
    directory %q;
    listen-on port %d { 127.0.0.1; };
    listen-on-v6 { none; };
    pid-file %q;
    session-keyfile %q;
    dnssec-validation no;
%s};
controls { };
`, dir, c.Port, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"), role)
	for _, z := range c.Zones {
		file, err := zoneFile(dir, z)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&conf, "zone %q {\n    type primary;\n    file %q;\n    allow-transfer { %s };\n", z.Origin, file, allow)
		if c.Notify != "" {
			h, p, err := net.SplitHostPort(c.Notify)
			if err != nil {
				return nil, fmt.Errorf("bind: notify %q: %v", c.Notify, err)
			}
			fmt.Fprintf(&conf, "    also-notify { %s port %s%s; };\n", h, p, keyRef)
		}
		conf.WriteString("    ixfr-from-differences yes;\n    max-ixfr-ratio unlimited;\n    notify-delay 0;\n};\n")
	}
	cf := filepath.Join(dir, "named.conf")
	if err := WriteFile(cf, conf.String()); err != nil {
		return nil, err
	}
	return []string{named, "-g", "-n", "1", "-c", cf}, nil
}

// StartBIND runs named for a test in a directory of its own and waits
// until it serves every zone; like StartKnot, it skips without BIND
// (fails under CI=true), fails with named's log, and stops named when the
// test ends.
func StartBIND(t testing.TB, c BINDConfig) *Server {
	t.Helper()
	testenv.RequireTool(t, "named")
	return start(t, "bind", "", &c.Port, func(dir string) ([]string, error) { return c.Write(dir) }, primaryZones(c.Zones))
}

// Reload has the server read its zone files again (SIGHUP; NSD and BIND
// then send NOTIFY for the zones that changed). Both run in the
// foreground (-d, -g): the process started is the one to signal.
func (s *Server) Reload(t testing.TB) {
	t.Helper()
	if err := s.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("reloading %s: %v", s.Name, err)
	}
}
