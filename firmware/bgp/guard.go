package bgp

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
)

// BGP message framing (RFC 4271 section 4.1) and the OPEN fields the guard
// reads.
const (
	headerLen       = 19
	maxMsgLen       = 4096
	msgTypeOpen     = 1
	msgTypeNotif    = 3
	openHoldTimeOff = 3 // version(1) + my AS(2)
	openErrCode     = 2
	openErrHoldTime = 6 // Unacceptable Hold Time
)

// errHoldTimeZero is returned to corebgp's reader instead of an OPEN that
// proposes hold time 0.
var errHoldTimeZero = errors.New("neighbour proposed hold time 0; refused (corebgp v0.8.5 crashes on it)")

// guardConn wraps every connection corebgp gets. It reads the neighbour's
// first message before corebgp does and refuses an OPEN with hold time 0:
// corebgp v0.8.5 dereferences a nil keepalive timer when the negotiated hold
// time is 0 and takes the whole process down (jwhited/corebgp PR #68,
// unreleased). RFC 4271 section 6.2 lets a speaker reject a hold time, so
// we answer with NOTIFICATION "Unacceptable Hold Time". It also tells the
// peer when the connection ends, so the dialer knows when to redial.
type guardConn struct {
	net.Conn
	p *peer

	// Touched only by corebgp's single reader goroutine.
	vetted  bool
	pending []byte

	closeOnce sync.Once
}

func newGuardConn(c net.Conn, p *peer) *guardConn {
	g := &guardConn{Conn: c, p: p}
	p.connOpened(g)
	return g
}

func (g *guardConn) Read(b []byte) (int, error) {
	if !g.vetted {
		g.vetted = true
		if err := g.vet(); err != nil {
			return 0, err
		}
	}
	if len(g.pending) > 0 {
		n := copy(b, g.pending)
		g.pending = g.pending[n:]
		return n, nil
	}
	return g.Conn.Read(b)
}

// vet reads the first message into pending, or refuses it.
func (g *guardConn) vet() error {
	hdr := make([]byte, headerLen)
	if _, err := io.ReadFull(g.Conn, hdr); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(hdr[16:18]))
	if hdr[18] != msgTypeOpen || n < headerLen+openHoldTimeOff+2 || n > maxMsgLen {
		g.pending = hdr // not an OPEN we can judge: corebgp will
		return nil
	}
	msg := make([]byte, n)
	copy(msg, hdr)
	if _, err := io.ReadFull(g.Conn, msg[headerLen:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint16(msg[headerLen+openHoldTimeOff:]) == 0 {
		notif := make([]byte, headerLen+2)
		for i := range 16 {
			notif[i] = 0xff
		}
		binary.BigEndian.PutUint16(notif[16:], uint16(len(notif)))
		notif[18], notif[19], notif[20] = msgTypeNotif, openErrCode, openErrHoldTime
		g.Conn.Write(notif) // best effort: the connection is going anyway
		g.p.setError(errHoldTimeZero.Error())
		return errHoldTimeZero
	}
	g.pending = msg
	return nil
}

func (g *guardConn) Close() error {
	err := g.Conn.Close()
	g.closeOnce.Do(func() { g.p.connClosed(g) })
	return err
}
