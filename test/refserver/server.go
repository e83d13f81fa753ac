package refserver

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Zone is one zone a name server serves as a primary (from File, or from
// Text written into the server's directory) or transfers as a secondary
// (from Primary).
type Zone struct {
	Origin string // with the final dot
	File   string // an existing zone file
	Text   string // or the zone's text, written to a file in the server's dir
	// Primary (host:port) makes it a secondary zone of that server
	// (Knot only).
	Primary string
	// Member lists it in the catalog Knot generates (KnotConfig.Catalog).
	Member bool
}

// Key is a TSIG key.
type Key struct{ Name, Algorithm, Secret string }

// Server is a running name server.
type Server struct {
	*Proc
	Addr string // 127.0.0.1:port, UDP and TCP
	Port int
	Dir  string // its configuration, state and zone files
}

// ServeTimeout is how long the test starters wait for a server to serve
// all its zones: the daemons refuse to start, or skip a zone, on small
// configuration or zone errors and say why only in their log.
const ServeTimeout = 20 * time.Second

// Serving waits up to timeout (counted from the process's start) until
// the server answers every origin's SOA authoritatively; it returns an
// error with the end of its log when it exits or does not.
func (s *Server) Serving(timeout time.Duration, origins ...string) error {
	deadline := s.Started.Add(timeout)
	for _, origin := range origins {
		for {
			r, err := AskSOA(s.Addr, origin)
			if err == nil {
				break
			}
			if s.Exited() {
				return fmt.Errorf("%s exited (%v) before serving %s:\n%s", s.Name, s.Err(), origin, s.Tail(40))
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s does not serve %s within %v (%v; last answer: %v):\n%s", s.Name, origin, timeout, err, r, s.Tail(40))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// WaitServing is Serving for a test, which fails if the server does not
// serve every origin within ServeTimeout.
func (s *Server) WaitServing(t testing.TB, origins ...string) {
	t.Helper()
	if err := s.Serving(ServeTimeout, origins...); err != nil {
		t.Fatal(err)
	}
}

// AskSOA asks addr for origin's SOA over UDP (EDNS, 1232 octets) and
// returns an error unless the answer is authoritative and has the SOA.
func AskSOA(addr, origin string) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(origin, dns.TypeSOA)
	q.SetEdns0(1232, false)
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	r, _, err := c.Exchange(q, addr)
	switch {
	case err != nil:
		return nil, err
	case r.Rcode != dns.RcodeSuccess:
		return r, fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	case !r.Authoritative:
		return r, fmt.Errorf("not authoritative")
	case len(r.Answer) == 0:
		return r, fmt.Errorf("no SOA in the answer")
	}
	return r, nil
}

// start is what the test starters share: a directory, a port, the config
// written by write (which returns the command line), the process, and the
// wait until it serves origins.
func start(t testing.TB, name, dir string, port *int, write func(dir string) ([]string, error), origins []string) *Server {
	t.Helper()
	if dir == "" {
		dir = filepath.Join(t.TempDir(), name)
	}
	if *port == 0 {
		*port = Port(t)
	}
	argv, err := write(dir)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(*port), Port: *port, Dir: dir}
	s.Proc = Run(t, Command{Name: name, Argv: argv})
	s.WaitServing(t, origins...)
	return s
}

// Restart starts the server again with the same command line after Stop
// (or a crash), and waits until it serves origins.
func (s *Server) Restart(t testing.TB, origins ...string) {
	t.Helper()
	s.Proc.Stop(5 * time.Second)
	s.Proc = Run(t, Command{Name: s.Name, Argv: s.Args(), LogFile: s.LogFile})
	s.WaitServing(t, origins...)
}

// mkdirs makes dir and its subdirectories.
func mkdirs(dir string, subs ...string) error {
	for _, d := range append([]string{""}, subs...) {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes content to path through a temporary name and a rename,
// so that a daemon reloading at that moment reads the old file or the new
// one, never half of it.
func WriteFile(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// hostAt turns host:port into the host@port of Knot's and NSD's configs.
func hostAt(hp string) string {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return strings.Replace(hp, ":", "@", 1)
	}
	return h + "@" + p
}

// primaryZones lists the origins a server serves itself (not secondaries).
func primaryZones(zs []Zone) []string {
	var out []string
	for _, z := range zs {
		if z.Primary == "" {
			out = append(out, z.Origin)
		}
	}
	return out
}

// zoneFile returns the file a zone is served from, writing Text into dir
// when it has no File.
func zoneFile(dir string, z Zone) (string, error) {
	if z.File != "" {
		return z.File, nil
	}
	f := filepath.Join(dir, z.Origin+"zone")
	return f, WriteFile(f, z.Text)
}
