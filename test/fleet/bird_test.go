package fleet

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
	anylab "github.com/shoestring-dns/shoestring/test/lab"
	"github.com/shoestring-dns/shoestring/test/nslab"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestRolloutWithBIRD rolls config changes across the anycast lab
// (test/lab: six nodes in network namespaces, each announcing the
// service prefixes over real BGP to BIRD and gobgpd). The first release
// completes: every node drains and comes back as its config is replaced
// (an in-process restart), the BGP gate sees its sessions Established
// and its prefixes announced, and with five nodes in one wave the
// invariant (6 nodes, keep at least half) lets three out at once while
// the router never has the service prefix via fewer than three nodes.
// The second release gives the gobgpd session a wrong peer ASN: the
// canary's session never comes up, its BGP gate fails for real, the
// rollout halts at the canary and the revert brings the session back.
func TestRolloutWithBIRD(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tool := range []string{"ip", "bird", "birdc", "gobgpd", "gobgp"} {
		testenv.RequireTool(t, tool)
	}
	bin := testenv.Binary(t)
	nslab.RemoveStale("sf")
	al, err := anylab.Up(anylab.Options{Name: fmt.Sprintf("sf%d", os.Getpid()), Dir: t.TempDir(), Binary: bin, Nodes: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range al.Nodes {
				if n.Proc != nil && os.Getenv("FLEET_DUMP") != "" {
					n.Proc.Signal(syscall.SIGQUIT)
					time.Sleep(time.Second)
				}
				if n.Proc != nil {
					t.Logf("%s log (tail):\n%s", n.Name, n.Proc.Tail(400))
				}
			}
			t.Logf("BIRD log (tail):\n%s", al.BIRD.Tail(30))
			t.Logf("gobgpd log (tail):\n%s", al.GoBGP.Tail(30))
		}
		al.Down()
	})
	if err := al.WaitConverged(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, p := range anylab.Prefixes() {
		prefixes = append(prefixes, p.String())
	}
	l := &lab{t: t, dir: t.TempDir(), procs: map[string]*exec.Cmd{}}
	for _, n := range al.Nodes {
		base, err := os.ReadFile(n.Config)
		if err != nil {
			t.Fatal(err)
		}
		l.nodes = append(l.nodes, inventory.Node{
			Name: n.Name, Site: "lab-" + n.Name, Region: "eu", Wave: "1", Group: "bgp", Prefixes: prefixes,
			API: forwardTCP(t, n.NS, anylab.MgmtAPI),
			DNS: forwardUDP(t, n.NS, anylab.Anycast4+":53"),
			Vars: map[string]string{"base": string(base),
				"badasn": strings.Replace(string(base), fmt.Sprintf("asn: %d\n", anylab.GoBGPASN), "asn: 65099\n", 1)},
		})
	}
	l.url = fmt.Sprintf("http://127.0.0.1:%d", refserver.Port(t))
	l.ctlArgs = []string{"serve", "-store", filepath.Join(l.dir, "fleet.db"), "-listen", strings.TrimPrefix(l.url, "http://"),
		"-poll", "300ms", "-gate-timeout", "15s", "-pass-rounds", "3", "-gate-interval", "300ms", "-min-announcing", "2"}
	l.startController()
	t.Cleanup(func() {
		l.ctl.Process.Kill()
		l.ctl.Wait()
		if t.Failed() {
			t.Logf("controller log:\n%s", tail(l.ctlLog.String(), 40))
		}
	})
	for _, n := range l.nodes {
		l.post("/api/nodes", n, nil)
	}
	l.call("PUT", "/api/groups/bgp", strings.NewReader("{{.Vars.base}}"), nil)

	// Watch the router's view of the primary service prefix throughout.
	primary := netip.MustParsePrefix(anylab.Primary4P)
	var mu sync.Mutex
	least, samples := len(al.Nodes), 0
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			hops, err := al.Nexthops(primary)
			if err != nil {
				continue
			}
			mu.Lock()
			samples++
			least = min(least, len(hops))
			mu.Unlock()
		}
	}()

	canaries := []rollout.Query{{Name: anylab.Zone, Type: "SOA"}}
	start := time.Now()
	var ro rollout.Rollout
	l.post("/api/rollouts", map[string]any{"group": "bgp", "template": "{{.Vars.base}}# release 2\n", "canaries": canaries}, &ro)
	done := l.waitState(ro.ID, 4*time.Minute, rollout.Completed, rollout.Halted)
	close(stop)
	<-watched
	if done.State != rollout.Completed {
		t.Fatalf("rollout %s: %s", done.State, done.Halt)
	}
	t.Logf("6-node config rollout over real BGP: %s (canary, then 5 nodes, 3 at a time), %d router samples", time.Since(start).Round(time.Millisecond), samples)
	for _, rn := range done.Nodes {
		for _, g := range rn.Gates {
			if g.Gate == "bgp" && (g.Outcome != rollout.Pass || !strings.Contains(g.Detail, "3 sessions established")) {
				t.Errorf("%s: bgp gate %s: %s", rn.Name, g.Outcome, g.Detail)
			}
		}
	}
	if got := done.MaxOut["eu "+anylab.Primary4P]; got != 3 {
		t.Errorf("%d nodes of the prefix were out at once, want 3 (6 nodes, keep half)", got)
	}
	mu.Lock()
	if least < 3 {
		t.Errorf("the router had %s via only %d nodes during the rollout", primary, least)
	}
	if least == len(al.Nodes) {
		t.Errorf("the router always had %s via all nodes: no node drained while updated", primary)
	}
	mu.Unlock()
	if err := al.WaitConverged(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		return
	}

	// A release that breaks the gobgpd session (wrong peer ASN).
	var bad rollout.Rollout
	l.post("/api/rollouts", map[string]any{"group": "bgp", "template": "{{.Vars.badasn}}# release 3\n", "canaries": canaries}, &bad)
	halted := l.waitState(bad.ID, 2*time.Minute, rollout.Completed, rollout.Halted)
	if halted.State != rollout.Halted || !strings.Contains(halted.Halt, "gate bgp: session gobgp is") {
		t.Fatalf("the bad release: %s %q, want halted on the canary's bgp gate", halted.State, halted.Halt)
	}
	canary := halted.Waves[0].Nodes[0]
	for _, rn := range halted.Nodes {
		if rn.Name != canary && rn.State != rollout.NodePending {
			t.Errorf("%s got the bad release (%s)", rn.Name, rn.State)
		}
	}
	l.call("POST", "/api/rollouts/"+bad.ID+"/revert", nil, nil)
	reverted := l.waitState(bad.ID, time.Minute, rollout.Reverted)
	for _, rn := range reverted.Nodes {
		if rn.Name == canary && rn.State != rollout.NodeReverted {
			t.Errorf("canary %s: %s %s", rn.Name, rn.State, rn.Error)
		}
	}
	if err := al.WaitConverged(60 * time.Second); err != nil {
		t.Fatalf("after the revert: %v", err)
	}
	t.Logf("bad release halted at canary %s and reverted: %s in all", canary, time.Since(start).Round(time.Millisecond))
}
