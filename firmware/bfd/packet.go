package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// State is a session state, numbered as on the wire (RFC 5880 section 4.1).
type State uint8

const (
	AdminDown State = iota
	Down
	Init
	Up
)

func (s State) String() string {
	switch s {
	case AdminDown:
		return "AdminDown"
	case Down:
		return "Down"
	case Init:
		return "Init"
	case Up:
		return "Up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diag is a diagnostic code: why the session last left Up.
type Diag uint8

const (
	DiagNone Diag = iota
	DiagControlDetectionTimeExpired
	DiagEchoFailed
	DiagNeighborSignaledDown
	DiagForwardingPlaneReset
	DiagPathDown
	DiagConcatenatedPathDown
	DiagAdminDown
	DiagReverseConcatenatedPathDown
)

func (d Diag) String() string {
	names := []string{"none", "control detection time expired", "echo function failed",
		"neighbor signaled session down", "forwarding plane reset", "path down",
		"concatenated path down", "administratively down", "reverse concatenated path down"}
	if int(d) < len(names) {
		return names[d]
	}
	return fmt.Sprintf("diag %d", uint8(d))
}

// Flag bits of the second octet.
const (
	flagPoll          = 0x20
	flagFinal         = 0x10
	flagCPIndependent = 0x08
	flagAuth          = 0x04
	flagDemand        = 0x02
	flagMultipoint    = 0x01
)

const (
	version   = 1
	packetLen = 24 // the mandatory section; we never send authentication
)

// packet is a BFD Control packet without authentication section.
type packet struct {
	diag          Diag
	state         State
	poll, final   bool
	demand        bool
	detectMult    uint8
	myDiscr       uint32
	yourDiscr     uint32
	desiredMinTx  time.Duration
	requiredMinRx time.Duration
	echoMinRx     time.Duration
}

func (p *packet) marshal() []byte {
	b := make([]byte, packetLen)
	b[0] = version<<5 | uint8(p.diag)&0x1f
	b[1] = uint8(p.state) << 6
	if p.poll {
		b[1] |= flagPoll
	}
	if p.final {
		b[1] |= flagFinal
	}
	if p.demand {
		b[1] |= flagDemand
	}
	b[2] = p.detectMult
	b[3] = packetLen
	binary.BigEndian.PutUint32(b[4:], p.myDiscr)
	binary.BigEndian.PutUint32(b[8:], p.yourDiscr)
	binary.BigEndian.PutUint32(b[12:], micros(p.desiredMinTx))
	binary.BigEndian.PutUint32(b[16:], micros(p.requiredMinRx))
	binary.BigEndian.PutUint32(b[20:], micros(p.echoMinRx))
	return b
}

func micros(d time.Duration) uint32 {
	return uint32(min(d.Microseconds(), 1<<32-1))
}

// parse applies the reception checks of RFC 5880 section 6.8.6 that need
// no session state.
func parse(b []byte) (*packet, error) {
	if len(b) < packetLen {
		return nil, errors.New("short packet")
	}
	if v := b[0] >> 5; v != version {
		return nil, fmt.Errorf("version %d", v)
	}
	n := int(b[3])
	if b[1]&flagAuth != 0 {
		// We configure no authentication, so an authenticated packet is
		// not for us (section 6.8.6).
		return nil, errors.New("authentication present")
	}
	if n < packetLen || n > len(b) {
		return nil, fmt.Errorf("length field %d, packet %d", n, len(b))
	}
	p := &packet{
		diag:          Diag(b[0] & 0x1f),
		state:         State(b[1] >> 6),
		poll:          b[1]&flagPoll != 0,
		final:         b[1]&flagFinal != 0,
		demand:        b[1]&flagDemand != 0,
		detectMult:    b[2],
		myDiscr:       binary.BigEndian.Uint32(b[4:]),
		yourDiscr:     binary.BigEndian.Uint32(b[8:]),
		desiredMinTx:  time.Duration(binary.BigEndian.Uint32(b[12:])) * time.Microsecond,
		requiredMinRx: time.Duration(binary.BigEndian.Uint32(b[16:])) * time.Microsecond,
		echoMinRx:     time.Duration(binary.BigEndian.Uint32(b[20:])) * time.Microsecond,
	}
	switch {
	case p.detectMult == 0:
		return nil, errors.New("detect multiplier 0")
	case b[1]&flagMultipoint != 0:
		return nil, errors.New("multipoint bit set")
	case p.myDiscr == 0:
		return nil, errors.New("my discriminator 0")
	case p.yourDiscr == 0 && p.state != Down && p.state != AdminDown:
		return nil, fmt.Errorf("your discriminator 0 in state %v", p.state)
	}
	return p, nil
}
