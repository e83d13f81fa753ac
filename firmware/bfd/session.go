package bfd

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// adminDownRepeats is how many AdminDown packets a session sends when it
// stops, so that one lost packet does not leave the neighbour to detect a
// failure instead.
const adminDownRepeats = 3

// session is one neighbour. Its goroutine (run) owns the machine; status
// reads a snapshot under mu.
type session struct {
	cfg SessionConfig
	srv *Server
	log *slog.Logger
	rx  chan *packet
	rng *rand.Rand // used only by run after Run starts it

	mu    sync.Mutex
	m     *machine
	since time.Time
}

func (ss *session) run(ctx context.Context, snd *sender) {
	defer snd.conn.Close()
	tx := time.NewTimer(0)
	defer tx.Stop()
	detect := time.NewTimer(time.Hour)
	detect.Stop()
	defer detect.Stop()
	var txAt time.Time // when the pending periodic packet is due

	send := func(final bool) {
		ss.mu.Lock()
		p := ss.m.control(final)
		ss.mu.Unlock()
		if err := snd.send(p); err != nil {
			ss.log.Debug("bfd send", "err", err)
		}
	}
	schedule := func() {
		ss.mu.Lock()
		d, ok := ss.m.nextTx(ss.rng), ss.m.sends()
		ss.mu.Unlock()
		if ok {
			tx.Reset(d)
			txAt = time.Now().Add(d)
		}
	}

	for {
		select {
		case <-ctx.Done():
			ss.mu.Lock()
			from := ss.m.state
			ss.m.adminDown()
			ss.mu.Unlock()
			ss.changed(from)
			for range adminDownRepeats {
				send(false)
			}
			return

		case <-tx.C:
			send(false)
			schedule()

		case p := <-ss.rx:
			now := time.Now()
			ss.mu.Lock()
			from := ss.m.state
			oldInterval := ss.m.txInterval()
			final := ss.m.receive(p, now)
			detectIn := ss.m.detectionTime()
			newInterval := ss.m.txInterval()
			sends := ss.m.sends()
			ss.mu.Unlock()
			detect.Reset(detectIn)
			if final {
				send(true)
			}
			ss.changed(from)
			switch {
			case !sends:
				tx.Stop()
				txAt = time.Time{}
			case newInterval < oldInterval || txAt.IsZero() || time.Until(txAt) > newInterval:
				// Faster timers take effect now rather than after the
				// old, slow interval (6.8.3 allows it for decreases).
				schedule()
			}

		case <-detect.C:
			ss.mu.Lock()
			from := ss.m.state
			ss.m.expire(time.Now())
			ss.mu.Unlock()
			ss.changed(from)
		}
	}
}

// changed logs and reports a state change, if there was one.
func (ss *session) changed(from State) {
	ss.mu.Lock()
	to, diag, remote := ss.m.state, ss.m.localDiag, ss.m.remoteState
	if to != from {
		ss.since = time.Now()
	}
	ss.mu.Unlock()
	if to == from {
		return
	}
	ev := Event{Name: ss.cfg.Name, Peer: ss.cfg.Peer, From: from, To: to, Diag: diag, Remote: remote, At: time.Now()}
	if from == Up {
		ss.log.Warn("bfd session down", "state", to, "diag", diag, "remote", remote)
	} else {
		ss.log.Info("bfd session state", "from", from, "to", to)
	}
	if f := ss.srv.cfg.OnChange; f != nil {
		f(ev)
	}
}

func (ss *session) status() SessionStatus {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return SessionStatus{
		Name:          ss.cfg.Name,
		Peer:          ss.cfg.Peer,
		State:         ss.m.state,
		Since:         ss.since,
		Diag:          ss.m.localDiag,
		RemoteState:   ss.m.remoteState,
		TxInterval:    ss.m.txInterval(),
		DetectionTime: ss.m.detectionTime(),
	}
}
