package bench

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// Server knows how to start one instance of a name server serving the
// benchmark zone. Config files, state and logs go in dir, which the bench
// makes new for every start, so no run inherits anything from the one
// before; only Shoestring's restart from its store reuses its dir, on
// purpose.
type Server interface {
	Name() string
	// Command returns argv (without taskset) and extra environment.
	Command(dir, zoneFile string, port int) (argv, env []string, err error)
}

// NSD is NLnet Labs' NSD with one serving process (server-count: 1), so
// like the others it serves from one core. database "" makes it read the
// zone file directly, with no nsd.db to compile first. Response rate
// limiting is off and responses minimal, as they are by default in Knot.
type NSD struct{ Bin string }

// Name implements Server.
func (NSD) Name() string { return "nsd" }

// Command implements Server.
func (n NSD) Command(dir, zoneFile string, port int) ([]string, []string, error) {
	conf := fmt.Sprintf(`server:
	server-count: 1
	ip-address: 127.0.0.1
	port: %d
	do-ip6: no
	database: ""
	zonelistfile: %q
	xfrdfile: %q
	xfrdir: %q
	pidfile: %q
	zonesdir: %q
	logfile: %q
	username: ""
	chroot: ""
	verbosity: 1
	# Debian builds NSD with response rate limiting on; from one client
	# address it would drop most NXDOMAIN and wildcard answers.
	rrl-ratelimit: 0
	rrl-whitelist-ratelimit: 0
	# Answer like Knot does by default (no NS/glue with positive answers),
	# so both reference servers send the same bytes per query.
	minimal-responses: yes
remote-control:
	control-enable: no
zone:
	name: %q
	zonefile: %q
`, port, filepath.Join(dir, "zone.list"), filepath.Join(dir, "xfrd.state"), dir,
		filepath.Join(dir, "nsd.pid"), dir, filepath.Join(dir, "nsd.log"), Origin, zoneFile)
	path := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, nil, err
	}
	return []string{n.Bin, "-d", "-c", path}, nil, nil
}

// Knot is CZ.NIC's Knot DNS with one UDP, one TCP and one background
// worker. The journal is off and the zone file is never written back, so
// Knot does no more work than NSD to load and serve the same file.
type Knot struct{ Bin string }

// Name implements Server.
func (Knot) Name() string { return "knot" }

// Command implements Server.
func (k Knot) Command(dir, zoneFile string, port int) ([]string, []string, error) {
	conf := fmt.Sprintf(`server:
    rundir: %q
    listen: 127.0.0.1@%d
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
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
zone:
  - domain: %s
    file: %q
`, dir, port, filepath.Join(dir, "db"), filepath.Join(dir, "knot.sock"), dir, Origin, zoneFile)
	// Knot warns on every start when its storage directory is missing.
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o755); err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, nil, err
	}
	return []string{k.Bin, "-c", path}, nil, nil
}

// Shoestring is our server in dev mode. GOMAXPROCS=1 keeps the Go
// scheduler to the one core taskset gives it, as the others are held to one
// worker. With NoZone it starts from the store already in dir: the restart
// measurement.
type Shoestring struct {
	Bin    string
	NoZone bool
}

// Name implements Server.
func (Shoestring) Name() string { return "shoestring" }

// Command implements Server.
func (s Shoestring) Command(dir, zoneFile string, port int) ([]string, []string, error) {
	if _, err := os.Stat(s.Bin); err != nil {
		return nil, nil, fmt.Errorf("binary %s: %w (run `make build`, or pass -bin)", s.Bin, err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, nil, err
	}
	argv := []string{s.Bin, "dev", "-data", data, "-listen", "127.0.0.1:" + strconv.Itoa(port), "-http", "127.0.0.1:0"}
	if !s.NoZone {
		argv = append(argv, "-zone", Origin+"="+zoneFile)
	}
	return argv, []string{"GOMAXPROCS=1"}, nil
}

// FreePort returns a loopback port that is free for both UDP and TCP just
// now. Servers bind both, and a fixed port could collide with a leftover
// from an earlier run or with another engineer's tests on the same machine.
func FreePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no loopback port free for both UDP and TCP")
}
