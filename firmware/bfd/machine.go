package bfd

import (
	"math/rand/v2"
	"time"
)

// slowTx is the least transmit interval while a session is not Up (RFC
// 5880 section 6.8.3).
const slowTx = time.Second

// timers are a session's configured intervals.
type timers struct {
	desiredMinTx  time.Duration
	requiredMinRx time.Duration
	detectMult    uint8
}

// machine is one session's RFC 5880 state (section 6.8.1) and the
// procedures of sections 6.8.3 to 6.8.7, without I/O: callers pass the
// time and send what it returns, which keeps it testable with a fake clock.
type machine struct {
	cfg timers

	state       State
	localDiag   Diag
	myDiscr     uint32
	remoteDiscr uint32
	remoteState State
	// remoteMinRx starts at 1 µs as section 6.8.1 requires, so that we
	// send at our own pace until the neighbour says otherwise.
	remoteMinRx      time.Duration
	remoteDesiredTx  time.Duration
	remoteDetectMult uint8
	// polling: a Poll Sequence is running (we set P until a packet with
	// F arrives), started whenever the intervals we advertise change.
	polling bool
	// detectAt is when the session fails without another packet.
	detectAt time.Time
}

func newMachine(cfg timers, discr uint32) *machine {
	return &machine{cfg: cfg, state: Down, remoteState: Down, myDiscr: discr, remoteMinRx: time.Microsecond}
}

// desiredMinTx is what we advertise: at least a second until Up, so that
// a session that is not up costs little.
func (m *machine) desiredMinTx() time.Duration {
	if m.state != Up {
		return max(m.cfg.desiredMinTx, slowTx)
	}
	return m.cfg.desiredMinTx
}

// txInterval is the agreed transmit interval before jitter (6.8.7).
func (m *machine) txInterval() time.Duration { return max(m.desiredMinTx(), m.remoteMinRx) }

// nextTx returns the jittered delay to the next periodic packet: 75 to 100%
// of the interval, or 75 to 90% with a detect multiplier of 1 (6.8.7).
func (m *machine) nextTx(rng *rand.Rand) time.Duration {
	spread := 0.25
	if m.cfg.detectMult == 1 {
		spread = 0.15
	}
	return time.Duration(float64(m.txInterval()) * (0.75 + spread*rng.Float64()))
}

// sends reports whether periodic packets go out at all: not when the
// neighbour asks for none (RemoteMinRx 0, 6.8.7).
func (m *machine) sends() bool { return m.remoteMinRx != 0 }

// detectionTime is the neighbour's detect multiplier times the agreed
// interval at which it sends to us (6.8.4).
func (m *machine) detectionTime() time.Duration {
	return time.Duration(m.remoteDetectMult) * max(m.cfg.requiredMinRx, m.remoteDesiredTx)
}

// control builds a Control packet reflecting the current state; final
// answers a Poll and then carries no Poll of its own (6.8.7).
func (m *machine) control(final bool) *packet {
	return &packet{
		diag:          m.localDiag,
		state:         m.state,
		poll:          m.polling && !final,
		final:         final,
		detectMult:    m.cfg.detectMult,
		myDiscr:       m.myDiscr,
		yourDiscr:     m.remoteDiscr,
		desiredMinTx:  m.desiredMinTx(),
		requiredMinRx: m.cfg.requiredMinRx,
	}
}

// receive runs the reception procedure of section 6.8.6 on a packet that
// passed parse and was matched to this session. It reports whether to
// answer at once with a Final.
func (m *machine) receive(p *packet, now time.Time) (answerFinal bool) {
	if m.state == AdminDown {
		return false
	}
	m.remoteDiscr = p.myDiscr
	m.remoteState = p.state
	m.remoteMinRx = p.requiredMinRx
	m.remoteDesiredTx = p.desiredMinTx
	m.remoteDetectMult = p.detectMult
	if p.final {
		m.polling = false
	}
	m.detectAt = now.Add(m.detectionTime())

	before := m.state
	if p.state == AdminDown {
		if m.state != Down {
			m.down(DiagNeighborSignaledDown)
		}
	} else {
		switch m.state {
		case Down:
			switch p.state {
			case Down:
				m.state = Init
			case Init:
				m.state = Up
			}
		case Init:
			if p.state == Init || p.state == Up {
				m.state = Up
			}
		case Up:
			if p.state == Down {
				m.down(DiagNeighborSignaledDown)
			}
		}
	}
	if m.state == Up && before != Up {
		// Our advertised transmit interval just dropped from the slow
		// rate to the configured one: a change of timers, so a Poll
		// Sequence (6.8.3). Going down needs none: the session is no
		// longer Up.
		m.localDiag = DiagNone
		m.polling = true
	}
	return p.poll
}

// expire checks the detection timer (6.8.4); it reports whether the
// session just went down.
func (m *machine) expire(now time.Time) bool {
	if (m.state != Init && m.state != Up) || now.Before(m.detectAt) {
		return false
	}
	m.down(DiagControlDetectionTimeExpired)
	// Nothing heard for a detection time: forget the neighbour's
	// discriminator (6.8.1).
	m.remoteDiscr = 0
	return true
}

func (m *machine) down(d Diag) {
	m.state = Down
	m.localDiag = d
	m.polling = false
}

// adminDown takes the session down administratively, before it is removed.
func (m *machine) adminDown() {
	m.state = AdminDown
	m.localDiag = DiagAdminDown
	m.polling = false
}
