package fleet

import (
	"net"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/nslab"
)

// forwardTCP listens on host loopback and carries each connection to
// addr inside the namespace: the controller reaches a lab node's
// management API (loopback-only, in the node's namespace) this way.
func forwardTCP(t *testing.T, ns, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go nslab.PipeTCP(ln, func() (up net.Conn, err error) {
		err = nslab.InNS(ns, func() (err error) {
			up, err = net.DialTimeout("tcp", addr, 2*time.Second)
			return err
		})
		return up, err
	})
	return ln.Addr().String()
}

// forwardUDP relays DNS queries from host loopback to addr inside the
// namespace, one socket per query: the controller's canary queries
// reach the node's own service address this way.
func forwardUDP(t *testing.T, ns, addr string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := append([]byte(nil), buf[:n]...)
			go func() {
				var up net.Conn
				if nslab.InNS(ns, func() (err error) {
					up, err = net.Dial("udp", addr)
					return err
				}) != nil {
					return
				}
				defer up.Close()
				up.SetDeadline(time.Now().Add(2 * time.Second))
				if _, err := up.Write(q); err != nil {
					return
				}
				r := make([]byte, 65535)
				m, err := up.Read(r)
				if err != nil {
					return
				}
				pc.WriteTo(r[:m], from)
			}()
		}
	}()
	return pc.LocalAddr().String()
}
