package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// DefaultSoak is how long a trial soaks when Config.Soak is zero
// (ota.soak's default).
const DefaultSoak = 60 * time.Second

// Soaking is the Progress state while a trial boot soaks.
const Soaking = "soaking"

// TrialChecks are what the soak asks the running node at its end.
type TrialChecks struct {
	// Health is the node's health; every part must pass (serving, zones
	// fresh, BGP sessions Established with the prefixes announced,
	// management reachable when configured).
	Health func() health.Report
	// SelfTest asks the node's own DNS server for the SOA of every zone
	// in serials (the zones served now) and checks the answers.
	SelfTest func(ctx context.Context, serials map[string]uint32) error
}

// Soak runs the trial of the firmware running now, if it is on trial:
// it waits Config.Soak, then commits the slot when every check passes;
// a check still failing after a second soak-length (BGP hold timers and
// the tailnet may take that long to come up on a slow box) marks the
// slot bad, with the failing checks as the reason, and reboots into the
// committed slot. Call it once the node is up; it returns when the
// trial is decided, ctx ends, or there is no trial.
func (a *Agent) Soak(ctx context.Context, c TrialChecks) error {
	st, booted, err := a.Slots()
	if err != nil {
		return fmt.Errorf("ota: slot state: %w", err)
	}
	if a.c.Booted == "" || booted == st.Committed || st.Trial != booted {
		return nil
	}
	info := st.Slots[booted]
	soak := a.c.Soak
	if soak <= 0 {
		soak = DefaultSoak
	}
	o := Outcome{Version: info.Version, Slot: booted, Source: "slot state"}
	if last, ok := a.Last(); ok && last.Slot == booted && last.Version == info.Version {
		o = last
	}
	before := o.Serials
	o.Result, o.At = ResultTrying, time.Now().UTC()
	o.Reason = fmt.Sprintf("boot %d of slot %s on trial: soaking %s before the commit", st.Boots, booted, soak)
	a.record(o)
	a.update(func(p *Progress) {
		*p = Progress{State: Soaking, Slot: booted, Version: info.Version, Started: time.Now()}
	})
	a.log.Info("ota: trial boot; soaking before the commit", "slot", booted, "version", info.Version, "boot", st.Boots, "soak", soak)

	start := time.Now()
	if !sleep(ctx, soak) {
		return ctx.Err()
	}
	for {
		ok, why := a.verdict(ctx, c, before)
		if ok {
			return a.commit(o, booted, start)
		}
		if time.Since(start) >= 2*soak {
			return a.fail(o, booted, "soak failed: "+why)
		}
		a.log.Warn("ota: trial not healthy yet", "slot", booted, "why", why, "decides_in", (2*soak - time.Since(start)).Round(time.Second))
		if !sleep(ctx, min(2*time.Second, soak/5)) {
			return ctx.Err()
		}
	}
}

// verdict is the commit's condition: every part of health, every zone
// served before the update served again at its serial or newer, and
// every served zone's SOA answered by this node.
func (a *Agent) verdict(ctx context.Context, c TrialChecks, before map[string]uint32) (bool, string) {
	var bad []string
	if c.Health != nil {
		if ok, why := c.Health().Verdict(); !ok {
			bad = append(bad, why)
		}
	}
	var now map[string]uint32
	if a.c.Serials != nil {
		now = a.c.Serials()
		if ok, why := health.SerialsAtLeast(before, now); !ok {
			bad = append(bad, "zones: "+why)
		}
	}
	if c.SelfTest != nil && len(now) > 0 {
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.SelfTest(tctx, now)
		cancel()
		if err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	return true, ""
}

func (a *Agent) commit(o Outcome, s string, soakStart time.Time) error {
	if err := a.c.Slots.Commit(s); err != nil {
		o.Result, o.Reason, o.At = ResultFailed, fmt.Sprintf("trial of slot %s passed but the commit failed (the next reboot falls back): %v", s, err), time.Now().UTC()
		a.record(o)
		a.update(func(p *Progress) { p.State, p.Error = Failed, o.Reason })
		a.log.Error("ota: commit failed", "slot", s, "err", err)
		return err
	}
	if a.c.OnCommit != nil {
		a.c.OnCommit()
	}
	o.Result, o.At = ResultCommitted, time.Now().UTC()
	o.Reason = fmt.Sprintf("version %s in slot %s passed its soak and is committed", o.Version, s)
	if !o.Started.IsZero() {
		o.Reason += fmt.Sprintf(" (%s after the update started)", o.At.Sub(o.Started).Round(time.Second))
	}
	a.record(o)
	a.update(func(p *Progress) { p.State, p.Updated = Idle, time.Now() })
	a.log.Info("ota: trial passed; committed", "slot", s, "version", o.Version, "soaked", time.Since(soakStart).Round(time.Second))
	return nil
}

// fail marks the running trial slot bad and reboots into the committed
// one.
func (a *Agent) fail(o Outcome, s, reason string) error {
	a.log.Error("ota: trial failed; marking the slot bad and going back", "slot", s, "version", o.Version, "reason", reason)
	err := a.c.Slots.MarkBad(s, reason)
	a.addBad(o.Version, reason)
	o.Result, o.Reason, o.At = ResultRolledBack, reason, time.Now().UTC()
	a.record(o)
	a.update(func(p *Progress) { p.State, p.Error = Failed, reason })
	if err != nil {
		// The slot stays armed-or-trying; the boot loader's one-shot try
		// still falls back on the next reset.
		a.log.Error("ota: marking the slot bad failed", "slot", s, "err", err)
	}
	if a.c.Reboot != nil {
		a.c.Reboot("trial of " + o.Version + " failed: " + reason)
	} else {
		a.log.Warn("ota: no reboot here; the next restart runs the committed slot")
	}
	return err
}

// reconcile brings the agent's record in line with the slot state read
// at start: a trial that ended without a commit (the boot loader fell
// back after a panic, a hang or a crash; RecordBoot marked the slot bad)
// becomes a rolled-back outcome, and every bad slot's version joins the
// versions refused from now on.
func (a *Agent) reconcile() error {
	st, err := a.c.Slots.State()
	if err != nil {
		return err
	}
	changed := false
	for _, n := range []string{slot.A, slot.B} {
		i := st.Slots[n]
		if i.Status != slot.Bad || i.Version == "" {
			continue
		}
		if a.remember(i.Version, i.Reason, i.Changed) {
			changed = true
		}
		if l := a.last; l != nil && l.Slot == n && l.Version == i.Version && (l.Result == ResultInstalled || l.Result == ResultTrying) {
			l.Result, l.Reason, l.At = ResultRolledBack, i.Reason, i.Changed
			a.log.Error("ota: the last update fell back to the committed slot", "slot", n, "version", i.Version, "reason", i.Reason)
			changed = true
		}
	}
	if l := a.last; l != nil && l.Result == ResultTrying && st.Slots[l.Slot].Status == slot.Committed && st.Slots[l.Slot].Version == l.Version {
		l.Result, l.At = ResultCommitted, st.Slots[l.Slot].Changed
		l.Reason = fmt.Sprintf("version %s in slot %s committed", l.Version, l.Slot)
		changed = true
	}
	if !changed {
		return nil
	}
	return a.save()
}

func (a *Agent) addBad(version, reason string) {
	if a.remember(version, reason, time.Now().UTC()) {
		if err := a.save(); err != nil {
			a.log.Error("ota: bad version not saved", "version", version, "err", err)
		}
	}
}

// remember adds a bad version unless it is known.
func (a *Agent) remember(version, reason string, at time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, b := range a.bad {
		if b.Version == version {
			return false
		}
	}
	a.bad = append(a.bad, BadVersion{Version: version, Reason: reason, At: at})
	return true
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
