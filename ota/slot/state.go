package slot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/shoestring-dns/shoestring/board"
)

// The two slots.
const (
	A = "A"
	B = "B"
)

// Other returns the other slot.
func Other(s string) string {
	if s == B {
		return A
	}
	return B
}

// Check says whether s names a slot.
func Check(s string) error {
	if s != A && s != B {
		return fmt.Errorf("no slot %q (want A or B)", s)
	}
	return nil
}

// Status is what a slot holds.
type Status string

const (
	// Empty: nothing usable, or being rewritten (Install with no version).
	Empty Status = "empty"
	// Installed: a verified version, never booted, or booted and then
	// left alone (a trial that never started).
	Installed Status = "installed"
	// Trying: armed to be tried once, or booted on trial and not yet
	// committed.
	Trying Status = "trying"
	// Committed: the slot every boot comes from.
	Committed Status = "committed"
	// Previous: the slot committed before the current one, kept as it was
	// until the next update overwrites it.
	Previous Status = "previous"
	// Bad: failed its trial (or was marked bad); never tried again until
	// a new version is installed over it.
	Bad Status = "bad"
)

// Info is one slot's record.
type Info struct {
	Version string    `json:"version,omitempty"`
	Status  Status    `json:"status"`
	Reason  string    `json:"reason,omitempty"` // why it is bad, or what happened last
	Changed time.Time `json:"changed,omitzero"`
}

// State is the slot state read back: the boot loader's (Committed, Try)
// reconciled with the state file's (the rest).
type State struct {
	Method board.BootMethod `json:"method"`
	// Committed is the slot every boot comes from.
	Committed string `json:"committed"`
	// Try is the slot the next boot, only, comes from ("" none). On the
	// Pi the flag itself travels with the reboot (TrybootRestartArg);
	// Try says it is to be passed.
	Try string `json:"try,omitempty"`
	// Trial is the slot on trial: armed, or booted and neither committed
	// nor failed ("" none).
	Trial string `json:"trial,omitempty"`
	// Boots counts the boots of Trial since it was first armed; a trial
	// that is re-armed before a deliberate reboot keeps counting.
	Boots int `json:"boots"`
	// Booted is the slot of the last boot RecordBoot saw.
	Booted string `json:"booted,omitempty"`
	// Slots are A and B.
	Slots map[string]Info `json:"slots"`
}

// Slots is one boot method's slot state. Every write is crash safe: a
// power cut at any point leaves either the old or the new state, and the
// boot loader's own state is written in the order that keeps the box
// bootable (see each method).
type Slots interface {
	// Method is the boot method.
	Method() board.BootMethod
	// State reads the state back.
	State() (State, error)
	// Install records that slot holds version, verified and not yet
	// booted; an empty version records the slot as Empty (call it before
	// rewriting a slot, so a cut mid-write leaves no stale version). The
	// committed slot is refused, and so is a slot armed or on trial.
	Install(slot, version string) error
	// TryOnce makes the next boot, only, come from slot; any reset
	// after that boot goes back to the committed slot. The committed
	// slot, an empty one and a bad one are refused. Re-arming the slot
	// on trial (before a deliberate reboot) keeps its boot count.
	TryOnce(slot string) error
	// Commit makes slot the one every boot comes from; the slot
	// committed before becomes Previous.
	Commit(slot string) error
	// MarkBad records that slot failed, and why, and disarms it; it is
	// not tried again until Install puts a new version there. The
	// committed slot is refused.
	MarkBad(slot, reason string) error
	// RecordBoot is called once per boot with the slot booted (Booted):
	// a boot of a slot other than the committed one counts as a boot of
	// the trial; a boot of the committed slot while a trial was pending
	// means the trial failed (a panic, a hang reset by the watchdog, a
	// reset before commit, or a power cut between TryOnce and the
	// reboot): the trial slot is marked Bad.
	RecordBoot(booted string) (State, error)
}

// Config says where a method's state lives.
type Config struct {
	Method board.BootMethod
	// Dir is where the boot partition is mounted (grub/grubenv,
	// autoboot.txt, the harness's tryboot flag), or for Binary the
	// directory holding the two binaries.
	Dir string
	// StateFile is the JSON state file (on the data partition on a box).
	// Empty keeps none: versions and statuses are then only what the
	// boot loader's state implies.
	StateFile string
}

// New returns the slot state of a boot method.
func New(c Config) (Slots, error) {
	var l loader
	switch c.Method {
	case board.GRUBEnv:
		l = &grubLoader{path: grubenvPath(c.Dir)}
	case board.Tryboot:
		l = &autobootLoader{dir: c.Dir}
	case board.Harness:
		l = &autobootLoader{dir: c.Dir, flagFile: true}
	case Binary:
		l = &binaryLoader{dir: c.Dir}
	default:
		return nil, fmt.Errorf("slot: unknown boot method %q", c.Method)
	}
	if c.Dir == "" {
		return nil, fmt.Errorf("slot: %s: no directory", c.Method)
	}
	return &switcher{method: c.Method, l: l, file: c.StateFile}, nil
}

// stateFormat is the state file's format version.
const stateFormat = 1

// record is the state file.
type record struct {
	Format int `json:"format"`
	State
}

func (s *switcher) load() (record, error) {
	r := record{Format: stateFormat}
	if s.file != "" {
		b, err := os.ReadFile(s.file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return r, err
		default:
			if err := json.Unmarshal(b, &r); err != nil {
				return r, fmt.Errorf("slot state %s: %w", s.file, err)
			}
			if r.Format != stateFormat {
				return r, fmt.Errorf("slot state %s: format %d, want %d", s.file, r.Format, stateFormat)
			}
		}
	}
	if r.Slots == nil {
		r.Slots = map[string]Info{}
	}
	for _, n := range []string{A, B} {
		if r.Slots[n].Status == "" {
			i := r.Slots[n]
			i.Status = Empty
			r.Slots[n] = i
		}
	}
	r.Method = s.method
	return r, nil
}

func (s *switcher) save(r record) error {
	if s.file == "" {
		return nil
	}
	r.Format = stateFormat
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return WriteAtomic(s.file, append(b, '\n'), 0o644)
}

// MaxTrialBoots bounds the planned restarts a trial survives
// (KeepTrial): a firmware that keeps restarting before its soak ends is
// not given a trial for ever.
const MaxTrialBoots = 3

// KeepTrial is called before a planned reboot (or a planned restart of
// a binary slot): when booted is on trial, neither committed nor failed,
// it is armed once more, keeping its boot count, so that the restart
// comes back to it instead of counting as a failed trial — up to
// MaxTrialBoots boots. A slot marked bad (a failed soak) is left alone:
// the restart goes back to the committed slot. It says whether it
// re-armed.
func KeepTrial(s Slots, booted string) (bool, error) {
	st, err := s.State()
	if err != nil || booted == "" || booted == st.Committed || st.Trial != booted || st.Slots[booted].Status != Trying {
		return false, err
	}
	if st.Boots >= MaxTrialBoots {
		return false, fmt.Errorf("slot %s restarted %d times on trial: not re-armed", booted, st.Boots)
	}
	if err := s.TryOnce(booted); err != nil {
		return false, err
	}
	return true, nil
}
