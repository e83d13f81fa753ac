package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/desired"
	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
	"github.com/shoestring-dns/shoestring/cmd/fleet/serial"
	"github.com/shoestring-dns/shoestring/cmd/fleet/store"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/reconfig"
)

// Store buckets.
const (
	Bucket           = "rollouts"
	QuarantineBucket = "quarantine"
)

// Policy is how rollouts proceed.
type Policy struct {
	// MinAnnouncing and MinFraction: of the nodes announcing a prefix in
	// a region, at least MinAnnouncing or MinFraction of them, whichever
	// is more, stay announcing (defaults 2 and 0.5).
	MinAnnouncing int
	MinFraction   float64
	// Waves after the canaries when nodes carry no wave labels (default 2).
	Waves int
	// GateTimeout: a node whose gates still fail this long after it runs
	// the new config fails the rollout (default 60 s). Inconclusive
	// gates never fail it: the wave waits.
	GateTimeout time.Duration
	// PassRounds: consecutive passing gate rounds for a node to pass
	// (default 3), Interval apart (default 1 s).
	PassRounds int
	Interval   time.Duration
	// ApplyTimeout bounds how long a node may take to run a config it
	// accepted (default 90 s).
	ApplyTimeout time.Duration
	// FirmwareTimeout bounds how long a node may take from the upload
	// of a bundle to committing it: install, reboot, soak (default 10 min).
	FirmwareTimeout time.Duration
}

func (p *Policy) defaults() {
	if p.MinAnnouncing == 0 {
		p.MinAnnouncing = 2
	}
	if p.MinFraction == 0 {
		p.MinFraction = 0.5
	}
	if p.Waves == 0 {
		p.Waves = 2
	}
	if p.GateTimeout == 0 {
		p.GateTimeout = 60 * time.Second
	}
	if p.PassRounds == 0 {
		p.PassRounds = 3
	}
	if p.Interval == 0 {
		p.Interval = time.Second
	}
	if p.ApplyTimeout == 0 {
		p.ApplyTimeout = 90 * time.Second
	}
	if p.FirmwareTimeout == 0 {
		p.FirmwareTimeout = 10 * time.Minute
	}
}

// Runner drives rollouts: one at a time, from the store.
type Runner struct {
	KV     store.KV
	Poller *live.Poller
	Client live.Client
	SOA    serial.SOA
	Policy Policy
	Log    *slog.Logger
	// MayAct, when set, is asked just before every config PUT to a node
	// whether this controller may still act (the leader's check with
	// etcd); an error ends the drive without the PUT. Nil: one
	// controller, always.
	MayAct func(ctx context.Context) error
	// Catchment, when set, takes a catchment measurement labelled label
	// and returns its id: before each wave starts and after it passes,
	// for the map's diff across the wave.
	Catchment func(ctx context.Context, label string) (id string, err error)
	// Bundles holds the firmware bundles firmware rollouts upload.
	Bundles Bundles

	mu   sync.Mutex // every change to a rollout and its save
	kick chan struct{}
	once sync.Once
}

func (r *Runner) init() {
	r.once.Do(func() {
		r.Policy.defaults()
		r.kick = make(chan struct{}, 1)
		if r.Client == nil {
			r.Client = live.DefaultClient
		}
		if r.SOA == nil {
			r.SOA = serial.QuerySOA
		}
		if r.Log == nil {
			r.Log = slog.Default()
		}
	})
}

func (r *Runner) wake() {
	r.init()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Runner) inv() inventory.Inventory { return inventory.Inventory{KV: r.KV} }

// save writes ro, only over the version it read or last wrote (so two
// controllers can never both record a step of the same rollout, and a
// controller that is no longer the leader records none); callers hold
// r.mu. A failed save of a copy being driven stops the drive.
func (r *Runner) save(ro *Rollout) error {
	ro.Updated = time.Now().UTC()
	b, err := json.Marshal(ro)
	if err == nil {
		var v int64
		if v, err = r.KV.PutIfVersion(Bucket, ro.ID, b, ro.rev); err == nil {
			ro.rev = v
			return nil
		}
	}
	r.Log.Error("rollout: saving state; this controller stops driving it", "rollout", ro.ID, "err", err)
	if ro.stop != nil {
		ro.stop(err)
	}
	return err
}

// All returns every rollout, newest first.
func (r *Runner) All() ([]*Rollout, error) {
	ros, err := store.ListJSON[*Rollout](r.KV, Bucket)
	sort.Slice(ros, func(i, j int) bool { return ros[i].Created.After(ros[j].Created) })
	return ros, err
}

// Get returns one rollout (with the version it was read at: a save of
// it fails if it changed since).
func (r *Runner) Get(id string) (*Rollout, error) {
	b, v, err := r.KV.GetVersion(Bucket, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("rollout %s: no such rollout", id)
		}
		return nil, err
	}
	ro := &Rollout{}
	if err := json.Unmarshal(b, ro); err != nil {
		return nil, fmt.Errorf("store %s/%s: %w", Bucket, id, err)
	}
	ro.rev = v
	return ro, nil
}

// Quarantined returns every quarantined release.
func (r *Runner) Quarantined() ([]Quarantine, error) {
	return store.ListJSON[Quarantine](r.KV, QuarantineBucket)
}

// ClearQuarantine lets a release be rolled again.
func (r *Runner) ClearQuarantine(release string) error {
	if _, err := r.KV.Get(QuarantineBucket, release); err != nil {
		return fmt.Errorf("release %s is not quarantined", release)
	}
	return r.KV.Delete(QuarantineBucket, release)
}

// Start plans a rollout of tmpl to group's nodes and queues it. It
// refuses while another rollout is unfinished, for a quarantined
// release, and when the template does not render to a valid config for
// every node (naming the node and the line).
func (r *Runner) Start(group, tmpl string, canaries []Query) (*Rollout, error) {
	release := desired.ReleaseOf(tmpl)
	ro := &Rollout{Group: group, Release: release, Template: tmpl, Canaries: canaries}
	if g, err := (desired.Groups{KV: r.KV}).Get(group); err == nil {
		ro.PrevTemplate = g.Template
	}
	return r.start(ro, func(n inventory.Node) (string, string, error) {
		doc, err := desired.Render(tmpl, n)
		if err != nil {
			return "", "", err
		}
		return desired.Hash(doc), string(doc), nil
	})
}

// start plans ro (Group, Release and what it rolls filled in) over its
// group's nodes; target gives each node's target and document.
func (r *Runner) start(ro *Rollout, target func(inventory.Node) (string, string, error)) (*Rollout, error) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	all, err := r.All()
	if err != nil {
		return nil, err
	}
	for _, o := range all {
		if !o.Finished() {
			return nil, fmt.Errorf("rollout %s is %s: finish it first (revert, or keep and resume)", o.ID, o.State)
		}
	}
	group, release := ro.Group, ro.Release
	var q Quarantine
	if err := store.GetJSON(r.KV, QuarantineBucket, release, &q); err == nil {
		return nil, fmt.Errorf("release %s is quarantined (rollout %s: %s); clear it first", release, q.Rollout, q.Reason)
	}
	nodes, err := r.inv().All()
	if err != nil {
		return nil, err
	}
	var members []inventory.Node
	for _, n := range nodes {
		if n.Group == group && !n.Unassigned {
			members = append(members, n)
		}
	}
	if len(members) == 0 {
		return nil, fmt.Errorf("group %s has no nodes", group)
	}
	ro.State, ro.Created = Running, time.Now().UTC()
	ro.ID = fmt.Sprintf("%s-%s-%d", group, release, len(all)+1)
	byName := map[string]inventory.Node{}
	for _, n := range members {
		byName[n.Name] = n
	}
	for i, w := range Plan(release, members, r.Policy.Waves) {
		name := "canary"
		if i > 0 {
			name = fmt.Sprintf("wave %d", i)
		}
		ro.Waves = append(ro.Waves, Wave{Name: name, Nodes: w})
		for _, n := range w {
			t, doc, err := target(byName[n])
			if err != nil {
				return nil, err
			}
			ro.Nodes = append(ro.Nodes, &Node{Name: n, Wave: i, State: NodePending, Target: t, Doc: doc})
		}
	}
	ro.event("", fmt.Sprintf("planned: %d nodes in %d waves", len(members), len(ro.Waves)))
	if err := r.save(ro); err != nil {
		return nil, err
	}
	r.wake()
	return ro, nil
}

// Keep leaves a halted rollout's nodes as they are; Resume continues it.
func (r *Runner) Keep(id string) (*Rollout, error) {
	return r.decide(id, func(ro *Rollout) error {
		if ro.State != Halted {
			return fmt.Errorf("rollout %s is %s, not halted", id, ro.State)
		}
		ro.State = Kept
		ro.event("", "operator: keep")
		return nil
	})
}

// Revert puts every node that got the release back on its previous
// config; the release stays quarantined.
func (r *Runner) Revert(id string) (*Rollout, error) {
	ro, err := r.decide(id, func(ro *Rollout) error {
		if ro.State != Halted && ro.State != Kept {
			return fmt.Errorf("rollout %s is %s: only a halted or kept rollout is reverted", id, ro.State)
		}
		ro.State = reverting
		ro.event("", "operator: revert")
		return nil
	})
	r.wake()
	return ro, err
}

// Resume continues a kept rollout: its release leaves quarantine (the
// operator judged the failure) and the failed node is gated again.
func (r *Runner) Resume(id string) (*Rollout, error) {
	ro, err := r.decide(id, func(ro *Rollout) error {
		if ro.State != Kept {
			return fmt.Errorf("rollout %s is %s: resume follows keep", id, ro.State)
		}
		r.KV.Delete(QuarantineBucket, ro.Release)
		for _, n := range ro.Nodes {
			if n.State == NodeFailed {
				n.State, n.Error = NodeApplying, ""
			}
		}
		ro.State, ro.Halt = Running, ""
		ro.event("", "operator: resume")
		return nil
	})
	r.wake()
	return ro, err
}

// reverting is the state while Revert runs.
const reverting = "reverting"

func (r *Runner) decide(id string, f func(*Rollout) error) (*Rollout, error) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	ro, err := r.Get(id)
	if err != nil {
		return nil, err
	}
	if err := f(ro); err != nil {
		return nil, err
	}
	if err := r.save(ro); err != nil {
		return nil, err
	}
	return ro, nil
}

// Run drives unfinished rollouts until ctx ends; one that was running
// when the controller stopped carries on where its saved state says.
func (r *Runner) Run(ctx context.Context) {
	r.init()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		all, err := r.All()
		if err == nil {
			for _, ro := range all {
				if ro.State == Running || ro.State == reverting {
					r.run(ctx, ro.ID)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-t.C:
		}
	}
}

// run drives (or reverts) one rollout from its stored state, until it
// finishes, halts, or one of its steps cannot be recorded.
func (r *Runner) run(ctx context.Context, id string) {
	ro, err := r.Get(id)
	if err != nil {
		r.Log.Error("rollout: reading", "rollout", id, "err", err)
		return
	}
	dctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	ro.stop = stop
	switch ro.State {
	case Running:
		r.drive(dctx, ro)
	case reverting:
		r.revert(dctx, ro)
	}
}

var errHalted = errors.New("halted")

// drive runs ro's waves from the one in progress.
func (r *Runner) drive(ctx context.Context, ro *Rollout) {
	for ro.Wave < len(ro.Waves) {
		r.measureCatchment(ctx, ro, "before")
		if err := r.driveWave(ctx, ro); err != nil {
			return
		}
		r.measureCatchment(ctx, ro, "after")
		if r.set(ro, func() {
			ro.event("", ro.Waves[ro.Wave].Name+" passed")
			ro.Wave++
		}) != nil {
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ro.Kind == KindFirmware {
		ro.State = Completed
		ro.event("", "completed; every node of group "+ro.Group+" committed "+ro.Version)
		r.save(ro)
		r.Log.Info("rollout completed", "rollout", ro.ID)
		return
	}
	if _, err := (desired.Groups{KV: r.KV}).Set(ro.Group, ro.Template); err != nil {
		r.Log.Error("rollout: setting the group's template", "err", err)
		if errors.Is(err, store.ErrNotLeader) {
			return
		}
	}
	ro.State = Completed
	ro.event("", "completed; group "+ro.Group+" now renders release "+ro.Release)
	if r.save(ro) == nil {
		r.Log.Info("rollout completed", "rollout", ro.ID)
	}
}

// measureCatchment takes the wave's catchment measurement of phase
// unless it was taken (a restarted controller does not take it again).
// A failed measurement is recorded, never a reason to halt.
func (r *Runner) measureCatchment(ctx context.Context, ro *Rollout, phase string) {
	if r.Catchment == nil {
		return
	}
	r.mu.Lock()
	for _, c := range ro.Catchment {
		if c.Wave == ro.Wave && c.Phase == phase {
			r.mu.Unlock()
			return
		}
	}
	wave := ro.Wave
	label := fmt.Sprintf("rollout %s wave %s %s", ro.ID, ro.Waves[wave].Name, phase)
	r.mu.Unlock()
	id, err := r.Catchment(ctx, label)
	ref := CatchmentRef{Wave: wave, Phase: phase, ID: id}
	if err != nil {
		ref.Error = err.Error()
	}
	r.mu.Lock()
	ro.Catchment = append(ro.Catchment, ref)
	ro.event("", "catchment "+label+": "+id+" "+ref.Error)
	r.save(ro)
	r.mu.Unlock()
}

type nodeOutcome struct {
	name string
	ok   bool
	why  string
}

// driveWave updates the wave's nodes, as many at once as the invariant
// allows, until all passed (nil) or one failed (errHalted, the rollout
// halted and its release quarantined) or ctx ended.
func (r *Runner) driveWave(ctx context.Context, ro *Rollout) error {
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	inflight := map[string]bool{}
	results := make(chan nodeOutcome)
	for {
		all, err := r.inv().All()
		if err != nil {
			return err
		}
		byName := map[string]inventory.Node{}
		for _, n := range all {
			byName[n.Name] = n
		}
		states := r.Poller.States()
		done := true
		r.mu.Lock()
		// Nodes already in an update (a resumed rollout) first: they
		// are out, whatever the invariant says of the pending ones.
		order := make([]*Node, 0, len(ro.Nodes))
		for _, n := range ro.Nodes {
			if n.State != NodePending {
				order = append(order, n)
			}
		}
		for _, n := range ro.Nodes {
			if n.State == NodePending {
				order = append(order, n)
			}
		}
		for _, n := range order {
			if n.Wave != ro.Wave || inflight[n.Name] || n.State == NodeDone {
				continue
			}
			done = false
			inv, ok := byName[n.Name]
			if !ok {
				n.Waiting = "not in the inventory any more"
				continue
			}
			if n.State == NodePending {
				if ok, why := MayTakeOut(inv, all, inflight, states, r.Policy.MinAnnouncing, r.Policy.MinFraction); !ok {
					if n.Waiting != why {
						n.Waiting = why
						ro.event(n.Name, "waiting: "+why)
						r.save(ro)
					}
					continue
				}
			}
			n.Waiting = ""
			inflight[n.Name] = true
			r.countOut(ro, inv, all, inflight)
			wg.Add(1)
			go func(n *Node, inv inventory.Node) {
				defer wg.Done()
				ok, why := r.updateNode(wctx, ro, n, inv)
				select {
				case results <- nodeOutcome{n.Name, ok, why}:
				case <-wctx.Done():
				}
			}(n, inv)
		}
		r.mu.Unlock()
		if done && len(inflight) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case res := <-results:
			delete(inflight, res.name)
			if !res.ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				cancel()
				wg.Wait()
				r.halt(ro, res.name, res.why)
				return errHalted
			}
		case <-time.After(r.Policy.Interval):
		}
	}
}

// countOut records the most nodes of one region and prefix out at once.
func (r *Runner) countOut(ro *Rollout, node inventory.Node, all []inventory.Node, inflight map[string]bool) {
	if ro.MaxOut == nil {
		ro.MaxOut = map[string]int{}
	}
	for _, p := range node.Prefixes {
		c := 0
		for _, n := range all {
			if inflight[n.Name] && n.Region == node.Region && contains(n.Prefixes, p) {
				c++
			}
		}
		key := node.Region + " " + p
		if c > ro.MaxOut[key] {
			ro.MaxOut[key] = c
		}
	}
}

// halt stops ro after node failed and quarantines its release.
func (r *Runner) halt(ro *Rollout, node, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ro.State = Halted
	ro.Halt = fmt.Sprintf("%s: %s", node, why)
	ro.event(node, "HALTED: "+why+"; release "+ro.Release+" quarantined")
	q := Quarantine{Release: ro.Release, Group: ro.Group, Rollout: ro.ID, Reason: ro.Halt, At: time.Now().UTC()}
	if err := store.PutJSON(r.KV, QuarantineBucket, ro.Release, q); err != nil {
		r.Log.Error("rollout: quarantining", "err", err)
	}
	r.save(ro)
	r.Log.Warn("rollout halted", "rollout", ro.ID, "node", node, "why", why)
}

// set changes a rollout's fields and saves, under the lock.
func (r *Runner) set(ro *Rollout, f func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
	return r.save(ro)
}

// updateNode applies the node's new document (unless the saved state
// shows it did already) and gates it. It returns false with why on a
// failure; ctx ending returns false with ctx's error.
func (r *Runner) updateNode(ctx context.Context, ro *Rollout, n *Node, inv inventory.Node) (bool, string) {
	cl := r.Client(inv.API)
	if ro.Kind == KindFirmware {
		if ok, why := r.updateFirmware(ctx, ro, n, cl); !ok {
			return false, why
		}
		return r.gate(ctx, ro, n, inv)
	}
	r.mu.Lock()
	state := n.State
	r.mu.Unlock()
	if state == NodePending {
		// What it runs now is what a revert puts back. Recorded with the
		// applying state, before the PUT.
		var cs api.ConfigStatus
		for {
			var err error
			if cs, err = cl.Config(); err == nil {
				break
			}
			if !sleep(ctx, r.Policy.Interval) {
				return false, ctx.Err().Error()
			}
		}
		base := r.baseline(ctx, n.Name)
		if err := r.set(ro, func() {
			n.Baseline = base
			n.PrevDoc, n.PrevHash = cs.Document, cs.Hash
			n.State, n.Started = NodeApplying, time.Now().UTC()
			ro.event(n.Name, "applying "+n.Target[:12])
		}); err != nil {
			// Not recorded: not sent (the drive is stopping).
			return false, err.Error()
		}
		state = NodeApplying
	}
	if state == NodeApplying {
		if ok, why := r.apply(ctx, ro, n, cl, n.Target, []byte(n.Doc), &n.Put); !ok {
			if ctx.Err() == nil {
				r.set(ro, func() { n.State, n.Error, n.Finished = NodeFailed, why, time.Now().UTC() })
			}
			return false, why
		}
		if err := r.set(ro, func() { n.State = NodeGating; ro.event(n.Name, "running it; gating") }); err != nil {
			return false, err.Error()
		}
	}
	return r.gate(ctx, ro, n, inv)
}

// apply makes the node run doc (hash), PUTting it at most once per
// rollout step: put records (in the saved state) that the node accepted
// it, and a node that shows the attempt is never sent it again.
func (r *Runner) apply(ctx context.Context, ro *Rollout, n *Node, cl *api.Client, hash string, doc []byte, put *bool) (bool, string) {
	deadline := time.Now().Add(r.Policy.ApplyTimeout)
	for {
		if time.Now().After(deadline) {
			return false, fmt.Sprintf("node did not run the config within %s", r.Policy.ApplyTimeout)
		}
		cs, err := cl.Config()
		switch {
		case err != nil:
			// Restarting, or unreachable: wait.
		case cs.Hash == hash:
			return true, ""
		case cs.Last != nil && cs.Last.Hash == hash && cs.Last.State == reconfig.StateRolledBack && !cs.Last.Started.Before(n.Started):
			return false, "the node rolled it back: " + cs.Last.Error
		case cs.Last != nil && cs.Last.Hash == hash && cs.Last.State == reconfig.StateApplying:
			// Applying now.
		case r.putDone(put):
			// Accepted before, and the node shows no trace of it: wait
			// for the timeout rather than send it twice.
		default:
			if r.MayAct != nil {
				if err := r.MayAct(ctx); err != nil {
					r.Log.Warn("rollout: not sending the config: this controller may not act", "node", n.Name, "err", err)
					if ro.stop != nil {
						ro.stop(err)
					}
					return false, err.Error()
				}
			}
			_, err := cl.PutConfig(doc)
			var ae *api.APIError
			switch {
			case err == nil:
				r.set(ro, func() { *put = true })
			case errors.As(err, &ae) && ae.Code == 409:
				// Busy with another apply: wait.
			case errors.As(err, &ae) && ae.Code/100 == 4:
				return false, "the node refused it: " + err.Error()
			}
		}
		if !sleep(ctx, r.Policy.Interval/4) {
			return false, ctx.Err().Error()
		}
	}
}

func (r *Runner) putDone(put *bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return *put
}

// gate evaluates the node's gates until they pass PassRounds rounds in a
// row, or fail past GateTimeout (a rolled-back config fails at once).
// Inconclusive rounds wait, however long.
func (r *Runner) gate(ctx context.Context, ro *Rollout, n *Node, inv inventory.Node) (bool, string) {
	cfg, err := config.Parse([]byte(n.Doc))
	if err != nil {
		return false, "document: " + err.Error()
	}
	start, passes := time.Now(), 0
	var since *live.Traffic // the first traffic sample of this gating
	for {
		st := r.Poller.Poll(inv)
		states := r.Poller.States()
		states[inv.Name] = st
		rows := serial.Check(states, r.SOA).ForNode(inv.Name)
		var current *live.Rate
		if rate, ok := live.RateBetween(since, st.Traffic); ok {
			current = &rate
		} else if st.Traffic != nil {
			since = st.Traffic // first sample, or the node restarted
		}
		r.mu.Lock()
		baseline := n.Baseline
		r.mu.Unlock()
		rs := evaluate(gateInput{kind: ro.Kind, node: inv, state: st, target: n.Target, cfg: cfg, serials: rows, canaries: ro.Canaries,
			baseline: baseline, current: current})
		v := verdict(rs)
		if err := r.set(ro, func() { n.Gates = rs }); err != nil {
			return false, err.Error()
		}
		switch v {
		case Pass:
			passes++
			if passes >= r.Policy.PassRounds {
				if err := r.set(ro, func() {
					n.State, n.Finished = NodeDone, time.Now().UTC()
					ro.event(n.Name, "gates passed")
				}); err != nil {
					return false, err.Error()
				}
				return true, ""
			}
		case Fail:
			passes = 0
			if rs[0].Outcome == Fail || time.Since(start) > r.Policy.GateTimeout {
				why := failed(rs)
				r.set(ro, func() { n.State, n.Error, n.Finished = NodeFailed, why, time.Now().UTC() })
				return false, why
			}
		default:
			passes = 0
		}
		if !sleep(ctx, r.Policy.Interval) {
			return false, ctx.Err().Error()
		}
	}
}

// baseline is the poller's last rate of the node's traffic, waiting a
// few rounds for one; nil when the node has none (its servfail and qps
// gates then stay inconclusive: no data is never a pass).
func (r *Runner) baseline(ctx context.Context, name string) *live.Rate {
	for range 10 {
		if st, ok := r.Poller.States()[name]; ok && st.Rate != nil {
			rate := *st.Rate
			return &rate
		}
		if !sleep(ctx, r.Policy.Interval) {
			return nil
		}
	}
	return nil
}

func failed(rs []Result) string {
	for _, r := range rs {
		if r.Outcome == Fail {
			return "gate " + r.Gate + ": " + r.Detail
		}
	}
	return ""
}

// revert puts every node that got (or may have got) the release back on
// its previous document, one node at a time.
func (r *Runner) revert(ctx context.Context, ro *Rollout) {
	inv := r.inv()
	for _, n := range ro.Nodes {
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		st := n.State
		r.mu.Unlock()
		switch st {
		case NodePending:
			r.set(ro, func() { n.State = NodeUntouched })
			continue
		case NodeReverted, NodeUntouched:
			continue
		}
		if ro.Kind == KindFirmware {
			r.revertFirmware(ro, n)
			continue
		}
		if n.PrevDoc == "" {
			r.set(ro, func() { n.State = NodeUntouched })
			continue
		}
		in, err := inv.Get(n.Name)
		if err != nil {
			r.set(ro, func() { n.Error = "revert: " + err.Error() })
			continue
		}
		var put bool
		r.set(ro, func() { n.Started = time.Now().UTC() })
		ok, why := r.apply(ctx, ro, n, r.Client(in.API), n.PrevHash, []byte(n.PrevDoc), &put)
		if ctx.Err() != nil {
			return
		}
		r.set(ro, func() {
			if ok {
				n.State = NodeReverted
				ro.event(n.Name, "reverted to "+n.PrevHash[:12])
			} else {
				n.Error = "revert: " + why
				ro.event(n.Name, "revert failed: "+why)
			}
		})
	}
	r.set(ro, func() {
		ro.State = Reverted
		ro.event("", "reverted; release "+ro.Release+" stays quarantined")
	})
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
