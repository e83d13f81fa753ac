package refserver

import (
	"fmt"
	"net"
	"strconv"
	"testing"
)

// FreePort returns a port free on 127.0.0.1 for both TCP and UDP at the
// moment of the call. Debian starts the system knot and nsd on port 53,
// and other tests (and other people's) run at the same time, so fixed
// ports are not an option.
func FreePort() (int, error) {
	for range 50 {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		tl.Close()
		if err != nil {
			continue
		}
		ul.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no port free for both TCP and UDP on 127.0.0.1")
}

// Port is FreePort for a test, which fails if there is none.
func Port(t testing.TB) int {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Ports returns n distinct free ports.
func Ports(n int) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}
