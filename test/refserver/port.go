package refserver

import (
	"fmt"
	"io"
	"net"
	"testing"
)

// FreePort returns a port free on 127.0.0.1 for both TCP and UDP at the
// moment of the call. Debian starts the system knot and nsd on port 53,
// and other tests (and other people's) run at the same time, so fixed
// ports are not an option.
func FreePort() (int, error) {
	p, err := Ports(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
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

// Ports returns n distinct ports free on 127.0.0.1 for both TCP and UDP
// (each is held until all are found).
func Ports(n int) ([]int, error) {
	var ports []int
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries == 50+n {
			return nil, fmt.Errorf("no %d ports free for both TCP and UDP on 127.0.0.1", n)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		closers = append(closers, l)
		p := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		closers = append(closers, u)
		ports = append(ports, p)
	}
	return ports, nil
}
