package slot

import (
	"fmt"
	"sync"
	"time"

	"github.com/shoestring-dns/shoestring/board"
)

// switcher is Slots over one loader and the state file. The loader's
// state is written first where it makes the new state take effect
// (TryOnce, Commit) and read back as the truth, so a cut between the two
// writes is repaired on the next read; where it withdraws something
// (MarkBad, Install over an armed slot) it is also written first, so a
// cut never leaves a bad slot armed.
type switcher struct {
	method board.BootMethod
	l      loader
	file   string
	now    func() time.Time // for tests

	mu sync.Mutex
}

func (s *switcher) Method() board.BootMethod { return s.method }

func (s *switcher) stamp() time.Time {
	if s.now != nil {
		return s.now().UTC()
	}
	return time.Now().UTC()
}

// read loads the state file and reconciles it with the loader.
func (s *switcher) read() (record, string, error) {
	r, err := s.load()
	if err != nil {
		return r, "", err
	}
	committed, try, err := s.l.read()
	if err != nil {
		return r, "", err
	}
	if try == committed {
		try = "" // a trial of the committed slot boots what a reset boots
	}
	r.Committed = committed
	if s.l.keepsTry() {
		r.Try = try
	}
	if r.Slots[committed].Status != Committed {
		// A commit cut before the state file was written, or a first read.
		for _, n := range []string{A, B} {
			if i := r.Slots[n]; i.Status == Committed {
				i.Status = Previous
				r.Slots[n] = i
			}
		}
		i := r.Slots[committed]
		i.Status, i.Reason = Committed, ""
		r.Slots[committed] = i
	}
	if r.Trial == committed {
		r.Trial, r.Boots = "", 0
	}
	if r.Try == committed {
		r.Try = ""
	}
	return r, try, nil
}

func (s *switcher) State() (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, _, err := s.read()
	return r.State, err
}

func (s *switcher) Install(slot, version string) error {
	if err := Check(slot); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, try, err := s.read()
	if err != nil {
		return err
	}
	if slot == r.Committed {
		return fmt.Errorf("slot %s is committed: install into slot %s", slot, Other(slot))
	}
	if slot == r.Booted && r.Trial == slot {
		return fmt.Errorf("slot %s is running on trial: commit it or mark it bad first", slot)
	}
	if try == slot || r.Try == slot {
		if err := s.l.disarm(); err != nil {
			return err
		}
	}
	if r.Trial == slot {
		r.Trial, r.Boots = "", 0
	}
	if r.Try == slot {
		r.Try = ""
	}
	i := Info{Version: version, Status: Installed, Changed: s.stamp()}
	if version == "" {
		i.Status = Empty
	}
	r.Slots[slot] = i
	return s.save(r)
}

func (s *switcher) TryOnce(slot string) error {
	if err := Check(slot); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, _, err := s.read()
	if err != nil {
		return err
	}
	if slot == r.Committed {
		return fmt.Errorf("slot %s is committed: there is nothing to try", slot)
	}
	i := r.Slots[slot]
	switch i.Status {
	case Bad:
		return fmt.Errorf("slot %s (version %q) is bad (%s): install a new version first", slot, i.Version, i.Reason)
	case Empty:
		// Only a slot recorded as empty (Install with no version): a slot
		// the state file has never heard of may hold anything.
		if !i.Changed.IsZero() {
			return fmt.Errorf("slot %s is empty", slot)
		}
	}
	if err := s.l.arm(slot); err != nil {
		return fmt.Errorf("arming slot %s: %w", slot, err)
	}
	r.Try = slot
	if r.Trial != slot {
		r.Trial, r.Boots = slot, 0
	}
	i.Status, i.Reason, i.Changed = Trying, "", s.stamp()
	r.Slots[slot] = i
	return s.save(r)
}

func (s *switcher) Commit(slot string) error {
	if err := Check(slot); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, try, err := s.read()
	if err != nil {
		return err
	}
	i := r.Slots[slot]
	if slot != r.Committed {
		switch {
		case i.Status == Bad:
			return fmt.Errorf("slot %s (version %q) is bad (%s): not committing it", slot, i.Version, i.Reason)
		case i.Status == Empty && !i.Changed.IsZero():
			return fmt.Errorf("slot %s is empty: not committing it", slot)
		}
	}
	if slot != r.Committed || try != "" {
		if err := s.l.commit(slot); err != nil {
			return fmt.Errorf("committing slot %s: %w", slot, err)
		}
	}
	if old := r.Committed; old != slot {
		o := r.Slots[old]
		o.Status, o.Changed = Previous, s.stamp()
		r.Slots[old] = o
	}
	i.Status, i.Reason, i.Changed = Committed, "", s.stamp()
	r.Slots[slot] = i
	r.Committed, r.Trial, r.Try, r.Boots = slot, "", "", 0
	return s.save(r)
}

func (s *switcher) MarkBad(slot, reason string) error {
	if err := Check(slot); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, try, err := s.read()
	if err != nil {
		return err
	}
	return s.markBad(&r, try, slot, reason)
}

func (s *switcher) markBad(r *record, try, slot, reason string) error {
	if slot == r.Committed {
		return fmt.Errorf("slot %s is committed: commit slot %s before marking %s bad", slot, Other(slot), slot)
	}
	if try == slot || r.Try == slot {
		if err := s.l.disarm(); err != nil {
			return fmt.Errorf("disarming slot %s: %w", slot, err)
		}
	}
	i := r.Slots[slot]
	i.Status, i.Reason, i.Changed = Bad, reason, s.stamp()
	r.Slots[slot] = i
	if r.Trial == slot {
		r.Trial, r.Boots = "", 0
	}
	if r.Try == slot {
		r.Try = ""
	}
	return s.save(*r)
}

func (s *switcher) RecordBoot(booted string) (State, error) {
	if err := Check(booted); err != nil {
		return State{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, try, err := s.read()
	if err != nil {
		return r.State, err
	}
	r.Booted = booted
	if !s.l.keepsTry() {
		r.Try = "" // the Pi firmware cleared its flag as it booted
	}
	if booted != r.Committed {
		if r.Trial != booted {
			r.Trial, r.Boots = booted, 0
		}
		r.Boots++
		if i := r.Slots[booted]; i.Status != Bad {
			i.Status, i.Changed = Trying, s.stamp()
			r.Slots[booted] = i
		}
		return r.State, s.save(r)
	}
	if t := r.Trial; t != "" {
		i := r.Slots[t]
		reason := fmt.Sprintf("trial of slot %s (version %q) ended without a commit after %d boot(s) of it: booted the committed slot %s again", t, i.Version, r.Boots, booted)
		if r.Boots == 0 {
			// PID 1 never recorded a boot of it: the kernel panicked, or
			// /init died, before the first thing PID 1 does with a disk
			// — or the new firmware could not see the disk at all.
			reason = fmt.Sprintf("trial of slot %s (version %q) ended without a commit: it never recorded a boot on the data partition (kernel panic, /init died at once, or its kernel could not see the disk); booted the committed slot %s again", t, i.Version, booted)
		}
		if err := s.markBad(&r, try, t, reason); err != nil {
			return r.State, err
		}
		return r.State, nil
	}
	return r.State, s.save(r)
}

// RestartArg is the reboot(2) RESTART2 argument the next reboot needs
// for an armed trial to happen: the Pi's tryboot flag, or "" (a plain
// restart).
func RestartArg(st State) string {
	if st.Method == board.Tryboot && st.Try != "" {
		return TrybootRestartArg
	}
	return ""
}
