package testenv

import (
	"net"
	"net/netip"
	"testing"
)

// ServeTCP serves TCP on a free port of 127.0.0.1 for the rest of the
// test: each connection is handed to handle on a goroutine of its own and
// closed when handle returns.
func ServeTCP(t testing.TB, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}
