package refserver

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

// NSDConfig is an NLnet Labs NSD listening on 127.0.0.1, with one serving
// process (server-count: 1) reading its zone files directly (no nsd.db).
type NSDConfig struct {
	Port  int // 0: a free one (StartNSD); Write needs it set
	Zones []Zone
	// Zone transfers are provided to 127.0.0.1 (signed with Key when
	// set) unless RefuseTransfers, which leaves NSD refusing them as it
	// does by default.
	RefuseTransfers bool
	Notify          string // host:port of a secondary to notify of changes
	Key             *Key
	// Identity, when set, is the NSID and the id.server answer, and
	// version.bind is refused.
	Identity string
	// RRLOff turns off the response rate limiting Debian builds NSD with:
	// from one client address it would drop most NXDOMAIN and wildcard
	// answers.
	RRLOff bool
	// RRL, when set, limits responses like this (RRLOff is then ignored).
	RRL *RRL
	// MinimalResponses answers like Knot does by default (no NS or glue
	// with positive answers), so both send the same bytes per query.
	MinimalResponses bool
}

// Write writes NSD's configuration (and the zones given as Text) into
// dir and returns nsd's command line.
func (c NSDConfig) Write(dir string) ([]string, error) {
	nsd, err := prepare("nsd", c.Port, dir, "xfr")
	if err != nil {
		return nil, err
	}
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
`, c.Port, c.Port, dir, filepath.Join(dir, "zone.list"), filepath.Join(dir, "xfrd.state"),
		filepath.Join(dir, "xfr"), filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "cookiesecrets.txt"))
	if c.Identity != "" {
		fmt.Fprintf(&conf, "    nsid: \"ascii_%s\"\n    identity: %q\n    hide-identity: no\n    hide-version: yes\n", c.Identity, c.Identity)
	}
	if c.RRL != nil {
		// NSD has no window setting; its prefix length is the default /24.
		fmt.Fprintf(&conf, "    rrl-ratelimit: %d\n    rrl-slip: %d\n    rrl-ipv4-prefix-length: 24\n    rrl-whitelist-ratelimit: %d\n",
			c.RRL.ResponsesPerSecond, c.RRL.Slip, c.RRL.ResponsesPerSecond)
	} else if c.RRLOff {
		conf.WriteString("    rrl-ratelimit: 0\n    rrl-whitelist-ratelimit: 0\n")
	}
	if c.MinimalResponses {
		conf.WriteString("    minimal-responses: yes\n")
	}
	conf.WriteString("remote-control:\n    control-enable: no\n")
	keyName := "NOKEY"
	if c.Key != nil {
		keyName = c.Key.Name
		fmt.Fprintf(&conf, "key:\n    name: %q\n    algorithm: %s\n    secret: %q\n", c.Key.Name, c.Key.Algorithm, c.Key.Secret)
	}
	for _, z := range c.Zones {
		if z.Primary != "" {
			return nil, fmt.Errorf("nsd: secondary zones are not supported here (%s)", z.Origin)
		}
		file, err := zoneFile(dir, z)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&conf, "zone:\n    name: %q\n    zonefile: %q\n", z.Origin, file)
		if !c.RefuseTransfers {
			fmt.Fprintf(&conf, "    provide-xfr: 127.0.0.1 %s\n", keyName)
		}
		if c.Notify != "" {
			fmt.Fprintf(&conf, "    notify: %s %s\n", hostAt(c.Notify), keyName)
		}
	}
	cf := filepath.Join(dir, "nsd.conf")
	if err := WriteFile(cf, conf.String()); err != nil {
		return nil, err
	}
	return []string{nsd, "-d", "-c", cf}, nil
}

// StartNSD runs NSD for a test in a directory of its own and waits until
// it serves every zone; like StartKnot, it skips without NSD (fails under
// CI=true), fails with NSD's log, and stops NSD when the test ends.
func StartNSD(t testing.TB, c NSDConfig) *Server {
	t.Helper()
	testenv.RequireTool(t, "nsd")
	return start(t, "nsd", "", &c.Port, func(dir string) ([]string, error) { return c.Write(dir) }, primaryZones(c.Zones))
}

// ZoneFile is the file a zone given as Text is served from, in a server
// NSD or BIND: rewrite it (WriteFile) and Reload to change the zone.
func (s *Server) ZoneFile(origin string) string { return filepath.Join(s.Dir, origin+"zone") }
