package agent_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/ota/agent"
	"github.com/shoestring-dns/shoestring/ota/agent/agenttest"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// reboots records the agent's reboot requests.
type reboots struct {
	mu  sync.Mutex
	why []string
}

func (r *reboots) reboot(why string) { r.mu.Lock(); r.why = append(r.why, why); r.mu.Unlock() }
func (r *reboots) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.why...)
}

// trialAgent is an agent on the rig running booted, with a short soak,
// the given zone serials and reboot recorder.
func trialAgent(t *testing.T, r *agenttest.Rig, booted string, serials map[string]uint32, rb *reboots) *agent.Agent {
	t.Helper()
	l := r.Layout()
	l.Booted, l.Reboot = booted, rb.reboot
	a, err := agent.New(agent.Config{Layout: l, Keys: r.Keys, Running: "v1.0.0", StateFile: r.OTAFile,
		Soak: 20 * time.Millisecond, Serials: func() map[string]uint32 { return serials },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func healthy() health.Report {
	ok := health.Check{OK: true, Why: "ok"}
	return health.Report{Serving: ok, ZonesFresh: ok, BGP: ok, Management: ok}
}

// installAndBoot installs v1.1.0 from slot A (which asks for the reboot)
// and boots slot B on trial, as the boot loader would.
func installAndBoot(t *testing.T, r *agenttest.Rig, serials map[string]uint32) []byte {
	t.Helper()
	rb := &reboots{}
	a := trialAgent(t, r, slot.A, serials, rb)
	b := r.Bundle(t, agenttest.Board, "v1.1.0", agenttest.MakeParts(t, "v1.1.0"), nil)
	o, err := a.Install(context.Background(), bytes.NewReader(b), agent.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Serials["example.test."] != 7 {
		t.Errorf("serials before the update not recorded: %+v", o)
	}
	if got := rb.list(); len(got) != 1 || !strings.Contains(got[0], "v1.1.0") || a.Progress().State != agent.Rebooting {
		t.Errorf("reboot after the install: %q, progress %+v", got, a.Progress())
	}
	if _, err := r.Slots.RecordBoot(slot.B); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrialCommits: a trial boot whose checks pass is committed after
// the soak, and its zones must be at least what they were.
func TestTrialCommits(t *testing.T) {
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			r := agenttest.New(t, m)
			serials := map[string]uint32{"example.test.": 7}
			installAndBoot(t, r, serials)
			rb := &reboots{}
			a := trialAgent(t, r, slot.B, map[string]uint32{"example.test.": 8, "new.test.": 1}, rb)
			var asked map[string]uint32
			err := a.Soak(context.Background(), agent.TrialChecks{Health: healthy,
				SelfTest: func(_ context.Context, s map[string]uint32) error { asked = s; return nil }})
			if err != nil {
				t.Fatal(err)
			}
			st, _ := r.Slots.State()
			if st.Committed != slot.B || st.Slots[slot.B].Status != slot.Committed || st.Slots[slot.A].Status != slot.Previous || st.Trial != "" {
				t.Errorf("after the soak: %+v", st)
			}
			if o, _ := a.Last(); o.Result != agent.ResultCommitted || o.Version != "v1.1.0" {
				t.Errorf("outcome: %+v", o)
			}
			if len(asked) != 2 || len(rb.list()) != 0 {
				t.Errorf("self-test asked %v; reboots %q", asked, rb.list())
			}
			// Committed: the next boot's agent has no trial to soak.
			if err := trialAgent(t, r, slot.B, nil, rb).Soak(context.Background(), agent.TrialChecks{}); err != nil || len(rb.list()) != 0 {
				t.Errorf("soak of a committed slot: %v %q", err, rb.list())
			}
			// The running version is the one B was installed as, not what
			// the binary calls itself (v1.0.0 here, as a build without a
			// stamped version would): an older signed bundle is refused.
			older := r.Bundle(t, agenttest.Board, "v1.0.5", agenttest.MakeParts(t, "v1.0.5"), nil)
			_, err = trialAgent(t, r, slot.B, nil, rb).Install(context.Background(), bytes.NewReader(older), agent.Request{})
			var re *agent.RefusedError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), "older than the running v1.1.0") {
				t.Errorf("v1.0.5 offered to a box committed on v1.1.0: %v", err)
			}
		})
	}
}

// TestTrialFailsSoak: a trial whose checks still fail after the soak (a
// BGP session down, a zone behind its serial, a wrong self-test) is
// marked bad with the reason, the box reboots back, and the version is
// refused from then on.
func TestTrialFailsSoak(t *testing.T) {
	for _, c := range []struct {
		name, want string
		health     func() health.Report
		serials    map[string]uint32
		selfTest   error
	}{
		{"bgp", "bgp: session bird Active", func() health.Report {
			r := healthy()
			r.BGP = health.Check{Why: "session bird Active"}
			return r
		}, map[string]uint32{"example.test.": 7}, nil},
		{"serial", "example.test. serial 6, was 7", healthy, map[string]uint32{"example.test.": 6}, nil},
		{"missing zone", "example.test. not served", healthy, map[string]uint32{}, nil},
		{"self-test", "answered SERVFAIL", healthy, map[string]uint32{"example.test.": 7}, errors.New("example.test. SOA: answered SERVFAIL")},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := agenttest.New(t, board.GRUBEnv)
			b := installAndBoot(t, r, map[string]uint32{"example.test.": 7})
			rb := &reboots{}
			a := trialAgent(t, r, slot.B, c.serials, rb)
			start := time.Now()
			a.Soak(context.Background(), agent.TrialChecks{Health: c.health,
				SelfTest: func(context.Context, map[string]uint32) error { return c.selfTest }})
			if d := time.Since(start); d < 40*time.Millisecond {
				t.Errorf("decided after %s: before twice the soak", d)
			}
			st, _ := r.Slots.State()
			if i := st.Slots[slot.B]; i.Status != slot.Bad || !strings.Contains(i.Reason, c.want) || st.Committed != slot.A || st.Try != "" {
				t.Errorf("after a failed soak: %+v", st)
			}
			if got := rb.list(); len(got) != 1 || !strings.Contains(got[0], c.want) {
				t.Errorf("reboots: %q", got)
			}
			if o, _ := a.Last(); o.Result != agent.ResultRolledBack || !strings.Contains(o.Reason, c.want) {
				t.Errorf("outcome: %+v", o)
			}
			// Back on slot A: the version is refused when offered again.
			a = trialAgent(t, r, slot.A, nil, rb)
			_, err := a.Install(context.Background(), bytes.NewReader(b), agent.Request{})
			if !errors.Is(err, agent.ErrBadVersion) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("the bad version offered again: %v", err)
			}
			if st2, _ := r.Slots.State(); st2.Slots[slot.B].Status != slot.Bad {
				t.Errorf("the refused install touched slot B: %+v", st2)
			}
		})
	}
}

// TestTrialFallsBackByBootLoader: the trial never reached its commit (a
// panic, a hang, PID 1 dying): the boot loader boots slot A again,
// RecordBoot marks B bad, and the agent on A reports the roll-back and
// refuses the version.
func TestTrialFallsBackByBootLoader(t *testing.T) {
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			r := agenttest.New(t, m)
			b := installAndBoot(t, r, map[string]uint32{"example.test.": 7})
			if _, err := r.Slots.RecordBoot(slot.A); err != nil {
				t.Fatal(err)
			}
			rb := &reboots{}
			a := trialAgent(t, r, slot.A, nil, rb)
			o, _ := a.Last()
			if o.Result != agent.ResultRolledBack || o.Version != "v1.1.0" || !strings.Contains(o.Reason, "ended without a commit") {
				t.Errorf("outcome on the old slot: %+v", o)
			}
			if bad := a.Bad(); len(bad) != 1 || bad[0].Version != "v1.1.0" {
				t.Errorf("bad versions: %+v", bad)
			}
			if _, err := a.Install(context.Background(), bytes.NewReader(b), agent.Request{}); !errors.Is(err, agent.ErrBadVersion) {
				t.Errorf("the bad version offered again: %v", err)
			}
			// A newer version is taken.
			p := agenttest.MakeParts(t, "v1.2.0")
			if _, err := a.Install(context.Background(), bytes.NewReader(r.Bundle(t, agenttest.Board, "v1.2.0", p, nil)), agent.Request{NoReboot: true}); err != nil {
				t.Errorf("a new version after the bad one: %v", err)
			}
			if len(rb.list()) != 0 || a.Progress().State != agent.Armed {
				t.Errorf("no_reboot rebooted: %q %+v", rb.list(), a.Progress())
			}
		})
	}
}
