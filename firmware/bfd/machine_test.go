package bfd

import (
	"math/rand/v2"
	"testing"
	"time"
)

// exchange delivers a's control packet to b and returns b's answer-final
// flag.
func exchange(a, b *machine, now time.Time) bool {
	p, _ := parse(a.control(false).marshal())
	return b.receive(p, now)
}

func TestMachineHandshakeAndTimers(t *testing.T) {
	now := time.Unix(1000, 0)
	cfg := timers{desiredMinTx: 50 * time.Millisecond, requiredMinRx: 50 * time.Millisecond, detectMult: 3}
	a, b := newMachine(cfg, 1), newMachine(timers{100 * time.Millisecond, 20 * time.Millisecond, 5}, 2)

	// While not Up, at most one packet a second.
	if a.txInterval() != time.Second {
		t.Fatalf("down tx interval %v", a.txInterval())
	}
	exchange(a, b, now) // b: Down -> Init
	if b.state != Init {
		t.Fatalf("b %v, want Init", b.state)
	}
	exchange(b, a, now) // a: Down -> Up (b said Init)
	if a.state != Up || !a.polling {
		t.Fatalf("a %v polling %v, want Up with a Poll Sequence", a.state, a.polling)
	}
	if final := exchange(a, b, now); !final || b.state != Up {
		t.Fatalf("b %v final %v, want Up and a Final owed", b.state, final)
	}
	// b answers the poll; a's sequence ends.
	fp, _ := parse(b.control(true).marshal())
	if fp.poll || !fp.final {
		t.Fatalf("final packet P %v F %v", fp.poll, fp.final)
	}
	a.receive(fp, now)
	if a.polling {
		t.Fatal("poll sequence did not end on Final")
	}
	// a sends at max(50 ms, b's 20 ms) = 50 ms; detects b within
	// 5 x max(50 ms, 100 ms) = 500 ms.
	if a.txInterval() != 50*time.Millisecond || a.detectionTime() != 500*time.Millisecond {
		t.Fatalf("a tx %v detect %v", a.txInterval(), a.detectionTime())
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for range 100 {
		if d := a.nextTx(rng); d < 37500*time.Microsecond || d > 50*time.Millisecond {
			t.Fatalf("jittered interval %v outside 75-100%% of 50 ms", d)
		}
	}

	// Silence: a goes Down after the detection time, not before.
	if a.expire(now.Add(499 * time.Millisecond)) {
		t.Fatal("expired early")
	}
	if !a.expire(now.Add(500*time.Millisecond)) || a.state != Down || a.localDiag != DiagControlDetectionTimeExpired || a.remoteDiscr != 0 {
		t.Fatalf("after silence: %v diag %v remote discr %d", a.state, a.localDiag, a.remoteDiscr)
	}
	// b hears a's Down and follows.
	exchange(a, b, now)
	if b.state != Down || b.localDiag != DiagNeighborSignaledDown {
		t.Fatalf("b %v diag %v", b.state, b.localDiag)
	}
}

func TestMachineAdminDown(t *testing.T) {
	now := time.Unix(1000, 0)
	cfg := timers{300 * time.Millisecond, 300 * time.Millisecond, 3}
	a, b := newMachine(cfg, 1), newMachine(cfg, 2)
	exchange(a, b, now)
	exchange(b, a, now)
	exchange(a, b, now)
	if a.state != Up || b.state != Up {
		t.Fatalf("a %v b %v", a.state, b.state)
	}
	a.adminDown()
	exchange(a, b, now)
	if b.state != Down || b.localDiag != DiagNeighborSignaledDown || b.remoteState != AdminDown {
		t.Fatalf("b %v diag %v remote %v", b.state, b.localDiag, b.remoteState)
	}
	// An AdminDown session ignores what it hears.
	exchange(b, a, now)
	if a.state != AdminDown {
		t.Fatalf("a %v", a.state)
	}
	// Neither Init nor Up skips a step from Down on an Up packet.
	c := newMachine(cfg, 3)
	up := &packet{state: Up, detectMult: 3, myDiscr: 9, yourDiscr: 3, desiredMinTx: time.Second, requiredMinRx: time.Second}
	c.receive(up, now)
	if c.state != Down {
		t.Fatalf("Down + Up packet -> %v, want Down", c.state)
	}
	// A neighbour asking for no packets gets none.
	zero := &packet{state: Down, detectMult: 3, myDiscr: 9}
	c.receive(zero, now)
	if c.sends() {
		t.Fatal("sends with RequiredMinRx 0")
	}
}
