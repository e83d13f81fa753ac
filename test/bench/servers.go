package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/shoestring-dns/shoestring/test/refserver"
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
// like the others it serves from one core; it reads the zone file
// directly, with no nsd.db to compile first. Response rate limiting is off
// and responses minimal, as they are by default in Knot.
type NSD struct {
	Bin string
	RRL *refserver.RRL // nil: rate limiting off
}

// Name implements Server.
func (NSD) Name() string { return "nsd" }

// Command implements Server.
func (n NSD) Command(dir, zoneFile string, port int) ([]string, []string, error) {
	argv, err := refserver.NSDConfig{Port: port, Zones: []refserver.Zone{{Origin: Origin, File: zoneFile}},
		RRLOff: true, RRL: n.RRL, MinimalResponses: true, RefuseTransfers: true}.Write(dir)
	return withBin(argv, n.Bin), nil, err
}

// Knot is CZ.NIC's Knot DNS with one UDP, one TCP and one background
// worker. The journal is off and the zone file is never written back, so
// Knot does no more work than NSD to load and serve the same file.
type Knot struct {
	Bin string
	RRL *refserver.RRL // nil: rate limiting off (as by default)
}

// Name implements Server.
func (Knot) Name() string { return "knot" }

// Command implements Server.
func (k Knot) Command(dir, zoneFile string, port int) ([]string, []string, error) {
	argv, err := refserver.KnotConfig{Port: port, Zones: []refserver.Zone{{Origin: Origin, File: zoneFile}}, Workers: 1, RefuseTransfers: true, RRL: k.RRL}.Write(dir)
	return withBin(argv, k.Bin), nil, err
}

// withBin runs argv's program from bin when it is set.
func withBin(argv []string, bin string) []string {
	if len(argv) > 0 && bin != "" {
		argv[0] = bin
	}
	return argv
}

// Shoestring is our server in dev mode. GOMAXPROCS=1 keeps the Go
// scheduler to the one core taskset gives it, as the others are held to one
// worker. With NoZone it starts from the store already in dir: the restart
// measurement.
type Shoestring struct {
	Bin    string
	NoZone bool
	// RRL turns response rate limiting on (`dev -rrl`: window 15 s,
	// IPv4 /24, slip 2, the only slip it can be given).
	RRL *refserver.RRL
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
	if s.RRL != nil {
		if s.RRL.Slip != 2 {
			return nil, nil, fmt.Errorf("shoestring dev: RRL slip %d: only the default 2 can be set", s.RRL.Slip)
		}
		argv = append(argv, "-rrl", strconv.Itoa(s.RRL.ResponsesPerSecond))
	}
	if !s.NoZone {
		argv = append(argv, "-zone", Origin+"="+zoneFile)
	}
	return argv, []string{"GOMAXPROCS=1"}, nil
}
