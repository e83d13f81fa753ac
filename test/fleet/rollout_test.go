package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/cmd/fleet/desired"
	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
	"github.com/shoestring-dns/shoestring/firmware/reconfig"
)

// fourNodes: three in eu, one in us; no wave labels (spread over 2 waves).
func fourNodes() []inventory.Node {
	return []inventory.Node{
		{Name: "ams1", Site: "ams", Region: "eu", Prefixes: []string{"192.0.2.0/24"}},
		{Name: "fra1", Site: "fra", Region: "eu", Prefixes: []string{"192.0.2.0/24"}},
		{Name: "lon1", Site: "lon", Region: "eu", Prefixes: []string{"192.0.2.0/24"}},
		{Name: "nyc1", Site: "nyc", Region: "us", Prefixes: []string{"192.0.2.0/24"}},
	}
}

// answer asks a node for www.rollout.test A.
func answer(t *testing.T, n inventory.Node) string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.rollout.test.", dns.TypeA)
	r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, n.DNS)
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	if len(r.Answer) == 0 {
		return dns.RcodeToString[r.Rcode]
	}
	return r.Answer[0].(*dns.A).A.String()
}

func want(t *testing.T, tmpl string, n inventory.Node) string {
	t.Helper()
	doc, err := desired.Render(tmpl, n)
	if err != nil {
		t.Fatal(err)
	}
	return desired.Hash(doc)
}

// TestRolloutAcrossWaves rolls a config change out to four nodes: one
// canary per region first, then the waves; every gate passes, every node
// runs the new document (applied once: generation 2 after the initial
// correct), answers with the new data, and shows no drift.
func TestRolloutAcrossWaves(t *testing.T) {
	l := newLab(t, fourNodes())
	l.setV1()
	for _, n := range l.nodes {
		if got := answer(t, n); got != "192.0.2.10" {
			t.Fatalf("%s before the rollout: %s", n.Name, got)
		}
	}
	start := time.Now()
	v2 := template("v2.zone")
	ro := l.startRollout(v2)
	if len(ro.Waves) < 2 || len(ro.Waves[0].Nodes) != 2 {
		t.Fatalf("plan: want a canary wave of one node per region (2) then waves, got %+v", ro.Waves)
	}
	regions := map[string]bool{}
	for _, name := range ro.Waves[0].Nodes {
		for _, n := range l.nodes {
			if n.Name == name {
				regions[n.Region] = true
			}
		}
	}
	if !regions["eu"] || !regions["us"] {
		t.Fatalf("canaries %v are not one per region", ro.Waves[0].Nodes)
	}
	ro = l.waitState(ro.ID, 60*time.Second, rollout.Completed, rollout.Halted)
	if ro.State != rollout.Completed {
		t.Fatalf("rollout %s: %s", ro.State, ro.Halt)
	}
	t.Logf("4-node config rollout in %d waves: %s", len(ro.Waves), time.Since(start).Round(time.Millisecond))
	for _, rn := range ro.Nodes {
		if rn.State != rollout.NodeDone {
			t.Errorf("%s: %s", rn.Name, rn.State)
		}
		traffic := 0
		for _, g := range rn.Gates {
			if g.Outcome != rollout.Pass {
				t.Errorf("%s gate %s: %s (%s)", rn.Name, g.Gate, g.Outcome, g.Detail)
			}
			if g.Gate == "servfail" || g.Gate == "qps" {
				traffic++
			}
		}
		// The traffic gates read the node's own /metrics, before and after.
		if traffic != 2 || rn.Baseline == nil {
			t.Errorf("%s: servfail and qps gates %d, baseline %+v", rn.Name, traffic, rn.Baseline)
		}
	}
	for _, n := range l.nodes {
		cs := l.config(n)
		if cs.Hash != want(t, v2, n) || cs.Generation != 2 {
			t.Errorf("%s runs generation %d %s, want generation 2 (one apply) of %s", n.Name, cs.Generation, cs.Hash[:12], want(t, v2, n)[:12])
		}
		if got := answer(t, n); got != "192.0.2.20" {
			t.Errorf("%s after the rollout answers %s", n.Name, got)
		}
	}
	// The group renders the new release now: no drift, the fleet green.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var nodes []struct {
			Name   string `json:"name"`
			Drift  string `json:"drift"`
			Colour string `json:"colour"`
		}
		l.call("GET", "/api/nodes", nil, &nodes)
		ok := len(nodes) == 4
		for _, n := range nodes {
			ok = ok && n.Drift == "in sync" && n.Colour == "green"
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the rollout, want every node in sync and green: %+v", nodes)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestBadReleaseHaltsAtCanary rolls out a config whose zone lacks the
// canary's name: the canary's gate fails, the rollout halts there, the
// release is quarantined (a new rollout of it is refused), no other node
// ever gets it, and revert puts the canary back on its old config. The
// dashboard, in headless Chromium, is red with the halted rollout.
func TestBadReleaseHaltsAtCanary(t *testing.T) {
	l := newLab(t, fourNodes())
	l.setV1()
	v1 := template("v1.zone")
	bad := template("bad.zone")
	ro := l.startRollout(bad)
	ro = l.waitState(ro.ID, 60*time.Second, rollout.Halted, rollout.Completed)
	if ro.State != rollout.Halted || !strings.Contains(ro.Halt, "canary") || !strings.Contains(ro.Halt, "NXDOMAIN") {
		t.Fatalf("want halted on the canary gate (NXDOMAIN), got %s: %s", ro.State, ro.Halt)
	}
	canaries := map[string]bool{}
	for _, name := range ro.Waves[0].Nodes {
		canaries[name] = true
	}
	for _, rn := range ro.Nodes {
		if !canaries[rn.Name] && rn.State != rollout.NodePending {
			t.Errorf("%s (wave %d) is %s: only canaries may have been touched", rn.Name, rn.Wave, rn.State)
		}
	}
	badHash := map[string]string{}
	for _, n := range l.nodes {
		badHash[n.Name] = want(t, bad, n)
		cs := l.config(n)
		if canaries[n.Name] {
			continue
		}
		if cs.Hash == badHash[n.Name] || (cs.Last != nil && cs.Last.Hash == badHash[n.Name]) {
			t.Errorf("%s, not a canary, got the bad release", n.Name)
		}
	}
	var qs []rollout.Quarantine
	l.call("GET", "/api/quarantine", nil, &qs)
	if len(qs) != 1 || qs[0].Release != ro.Release {
		t.Fatalf("quarantine: %+v, want release %s", qs, ro.Release)
	}
	// The dashboard shows it: red overall, the rollout red and halted.
	dom := dashboardDOM(t, l.url+"/")
	marks := []string{`id="overall" class="red"`, `data-state="halted"`, `class="rollout red"`, "NXDOMAIN", `id="serials"`}
	for _, site := range []string{"ams", "fra", "lon", "nyc"} {
		marks = append(marks, `data-site="`+site+`"`)
	}
	for _, rn := range ro.Nodes {
		if rn.State == rollout.NodeFailed {
			marks = append(marks, `data-node="`+rn.Name+`" data-state="failed"`)
		}
	}
	for _, s := range marks {
		if !strings.Contains(dom, s) {
			t.Errorf("dashboard lacks %q", s)
		}
	}
	if t.Failed() {
		t.Fatalf("dashboard DOM:\n%s", tail(dom, 80))
	}
	// Not offered again while quarantined; nor may another rollout start
	// before this one is decided.
	if err := l.try("POST", "/api/rollouts", strings.NewReader(`{"group":"lab","template":`+jsonString(bad)+`}`), nil); err == nil {
		t.Fatal("a new rollout started while one is halted")
	}
	l.call("POST", "/api/rollouts/"+ro.ID+"/revert", nil, nil)
	ro = l.waitState(ro.ID, 30*time.Second, rollout.Reverted)
	for _, n := range l.nodes {
		cs := l.config(n)
		if cs.Hash != want(t, v1, n) {
			t.Errorf("%s after revert runs %s, want v1 %s", n.Name, cs.Hash[:12], want(t, v1, n)[:12])
		}
		if got := answer(t, n); got != "192.0.2.10" {
			t.Errorf("%s after revert answers %s", n.Name, got)
		}
		if !canaries[n.Name] && cs.Generation != 1 {
			t.Errorf("%s, not a canary, was applied to: generation %d", n.Name, cs.Generation)
		}
	}
	err := l.try("POST", "/api/rollouts", strings.NewReader(`{"group":"lab","template":`+jsonString(bad)+`}`), nil)
	if err == nil || !strings.Contains(err.Error(), "quarantined") {
		t.Fatalf("a quarantined release was offered again: %v", err)
	}
}

// TestInvariantOneAtATime: three nodes announce a prefix in one region,
// the minimum is 2, and the wave labels put two of them in the same
// wave: the controller still never has more than one in an update.
func TestInvariantOneAtATime(t *testing.T) {
	nodes := []inventory.Node{
		{Name: "a1", Region: "eu", Wave: "1", Prefixes: []string{"192.0.2.0/24"}},
		{Name: "a2", Region: "eu", Wave: "1", Prefixes: []string{"192.0.2.0/24"}},
		{Name: "a3", Region: "eu", Wave: "1", Prefixes: []string{"192.0.2.0/24"}},
	}
	l := newLab(t, nodes, "-min-announcing", "2")
	l.setV1()
	ro := l.startRollout(template("v2.zone"))
	if len(ro.Waves) != 2 || len(ro.Waves[1].Nodes) != 2 {
		t.Fatalf("plan: want the canary then one wave of two, got %+v", ro.Waves)
	}
	ro = l.waitState(ro.ID, 60*time.Second, rollout.Completed, rollout.Halted)
	if ro.State != rollout.Completed {
		t.Fatalf("rollout %s: %s", ro.State, ro.Halt)
	}
	if got := ro.MaxOut["eu 192.0.2.0/24"]; got != 1 {
		t.Errorf("at most %d nodes of the prefix were out at once, want 1", got)
	}
	waited := false
	for _, e := range ro.Events {
		waited = waited || strings.Contains(e.Msg, "at most 1 may be out at once")
	}
	if !waited {
		t.Error("no node ever waited on the invariant, though the wave held two")
	}
	// From the saved timings: no two updates overlapped.
	for i, a := range ro.Nodes {
		for _, b := range ro.Nodes[i+1:] {
			if a.Started.Before(b.Finished) && b.Started.Before(a.Finished) {
				t.Errorf("%s [%s–%s] and %s [%s–%s] were in an update together", a.Name, a.Started.Format("05.000"), a.Finished.Format("05.000"), b.Name, b.Started.Format("05.000"), b.Finished.Format("05.000"))
			}
		}
	}
}

// TestControllerKilledMidWave kills the controller (SIGKILL) while a
// wave is in progress; started again on the same store it finishes the
// rollout, and no node was applied to twice (each runs generation 2).
func TestControllerKilledMidWave(t *testing.T) {
	l := newLab(t, fourNodes(), "-pass-rounds", "8")
	l.setV1()
	v2 := template("v2.zone")
	ro := l.startRollout(v2)
	ro = l.waitMidWave(t, ro.ID)
	l.killController()
	t.Logf("killed the controller in wave %d", ro.Wave)
	l.startController()
	ro = l.waitState(ro.ID, 60*time.Second, rollout.Completed, rollout.Halted)
	if ro.State != rollout.Completed {
		t.Fatalf("after the restart: %s: %s", ro.State, ro.Halt)
	}
	l.appliedOnce(t, v2)
}

var _ = reconfig.StateApplied

// waitMidWave polls the rollout until a node of a wave after the canary
// is being applied or gated, and returns it then.
func (l *lab) waitMidWave(t *testing.T, id string) *rollout.Rollout {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ro := l.rollout(id)
		inWave := false
		for _, rn := range ro.Nodes {
			if rn.Wave >= 1 && (rn.State == rollout.NodeApplying || rn.State == rollout.NodeGating) {
				inWave = true
			}
		}
		if inWave {
			return ro
		}
		if ro.State != rollout.Running || time.Now().After(deadline) {
			t.Fatalf("never caught a wave in progress: %s", ro.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// appliedOnce checks that every node runs tmpl's document at generation
// 2: applied once, never twice.
func (l *lab) appliedOnce(t *testing.T, tmpl string) {
	t.Helper()
	for _, n := range l.nodes {
		cs := l.config(n)
		if cs.Hash != want(t, tmpl, n) {
			t.Errorf("%s runs %s, want v2", n.Name, cs.Hash[:12])
		}
		if cs.Generation != 2 || (cs.Last != nil && cs.Last.Generation != 2) {
			t.Errorf("%s: generation %d, last attempt %+v: applied more than once", n.Name, cs.Generation, cs.Last)
		}
	}
}
