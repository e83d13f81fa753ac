package bgp

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// fakePeer is a minimal BGP neighbour for tests that need no root: it
// answers the speaker's OPEN, then records what the speaker sends (parsed
// with gobgp, an independent implementation) and can send UPDATEs itself.
type fakePeer struct {
	ln       net.Listener
	asn      uint32
	holdTime uint16
}

func listenFake(t *testing.T, ip string, asn uint32, rcvbuf int) *fakePeer {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		if rcvbuf == 0 {
			return nil
		}
		// A small receive window set before listen() makes a peer that
		// stops reading push back on the sender quickly.
		return c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		})
	}}
	ln, err := lc.Listen(t.Context(), "tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("cannot listen on %s: %v", ip, err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakePeer{ln: ln, asn: asn, holdTime: 90}
}

func (f *fakePeer) addr() netip.Addr {
	return f.ln.Addr().(*net.TCPAddr).AddrPort().Addr().Unmap()
}

func (f *fakePeer) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

// fakeConn is one accepted session.
type fakeConn struct {
	c      net.Conn
	open   *gbgp.BGPOpen // the speaker's OPEN
	closed chan struct{}

	mu      sync.Mutex
	routes  map[string][]gbgp.PathAttributeInterface
	updates int
	notif   *gbgp.BGPNotification
}

// accept waits for the speaker to connect and completes the handshake.
// With read false, nothing more is read: the peer stalls.
func (f *fakePeer) accept(t *testing.T, timeout time.Duration, read bool) *fakeConn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := f.ln.Accept(); ch <- res{c, err} }()
	var r res
	select {
	case r = <-ch:
	case <-time.After(timeout):
		t.Fatalf("fake peer %v: no connection within %v", f.addr(), timeout)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	fc := &fakeConn{c: r.c, closed: make(chan struct{}), routes: map[string][]gbgp.PathAttributeInterface{}}
	m, err := readMsg(r.c)
	if err != nil {
		t.Fatalf("reading OPEN: %v", err)
	}
	open, ok := m.Body.(*gbgp.BGPOpen)
	if !ok {
		t.Fatalf("first message %T, want OPEN", m.Body)
	}
	fc.open = open
	fc.send(t, fakeOpen(f.asn, f.holdTime))
	fc.send(t, []byte{4})
	if read {
		go fc.read()
	}
	return fc
}

// fakeOpen returns type byte + OPEN body offering 4-byte ASN and IPv4 and
// IPv6 unicast.
func fakeOpen(asn uint32, hold uint16) []byte {
	caps := []byte{65, 4, 0, 0, 0, 0, 1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1}
	binary.BigEndian.PutUint32(caps[2:], asn)
	b := []byte{1, 4, 0, 0, 0, 0, 10, 99, 99, 99, byte(2 + len(caps)), 2, byte(len(caps))}
	as2 := uint16(23456)
	if asn <= 65535 {
		as2 = uint16(asn)
	}
	binary.BigEndian.PutUint16(b[2:], as2)
	binary.BigEndian.PutUint16(b[4:], hold)
	return append(b, caps...)
}

// send writes one message: its type byte followed by the body.
func (fc *fakeConn) send(t *testing.T, typeAndBody []byte) {
	t.Helper()
	hdr := make([]byte, 18, 19+len(typeAndBody))
	for i := range 16 {
		hdr[i] = 0xff
	}
	binary.BigEndian.PutUint16(hdr[16:], uint16(18+len(typeAndBody)))
	if _, err := fc.c.Write(append(hdr, typeAndBody...)); err != nil {
		t.Fatalf("fake peer write: %v", err)
	}
}

func (fc *fakeConn) sendUpdate(t *testing.T, body []byte) {
	t.Helper()
	fc.send(t, append([]byte{2}, body...))
}

func readMsg(r io.Reader) (*gbgp.BGPMessage, error) {
	hdr := make([]byte, 19)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[16:]))
	if n < 19 || n > 4096 {
		return nil, errors.New("bad length " + strconv.Itoa(n))
	}
	buf := make([]byte, n)
	copy(buf, hdr)
	if _, err := io.ReadFull(r, buf[19:]); err != nil {
		return nil, err
	}
	return gbgp.ParseBGPMessage(buf)
}

func (fc *fakeConn) read() {
	defer close(fc.closed)
	for {
		m, err := readMsg(fc.c)
		if err != nil {
			return
		}
		fc.mu.Lock()
		switch b := m.Body.(type) {
		case *gbgp.BGPUpdate:
			fc.updates++
			for _, w := range b.WithdrawnRoutes {
				delete(fc.routes, w.NLRI.String())
			}
			for _, n := range b.NLRI {
				fc.routes[n.NLRI.String()] = b.PathAttributes
			}
			for _, a := range b.PathAttributes {
				switch a := a.(type) {
				case *gbgp.PathAttributeMpReachNLRI:
					for _, n := range a.Value {
						fc.routes[n.NLRI.String()] = b.PathAttributes
					}
				case *gbgp.PathAttributeMpUnreachNLRI:
					for _, n := range a.Value {
						delete(fc.routes, n.NLRI.String())
					}
				}
			}
		case *gbgp.BGPNotification:
			fc.notif = b
		}
		fc.mu.Unlock()
	}
}

func (fc *fakeConn) count() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return len(fc.routes)
}

func (fc *fakeConn) route(p string) []gbgp.PathAttributeInterface {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.routes[p]
}

func (fc *fakeConn) notification() *gbgp.BGPNotification {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.notif
}

// eventually polls cond every 10 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}
