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

// TestRolloutWithBIRD rolls a config change across the anycast lab
// (test/lab: three nodes in network namespaces, each announcing the
// service prefixes over real BGP to BIRD): every node drains and comes
// back as its config is replaced, the BGP gate sees its sessions
// Established and its prefixes announced, and the wave labels put two
// nodes in one wave, yet the router never has fewer than two nodes
// announcing the service prefix (3 nodes, minimum 2).
//
// Opt-in (FLEET_BIRD=1) until the lab's sessions come back reliably after
// a node's in-process restart: in 2 of 6 runs on a loaded machine a
// node's session to gobgpd or BIRD stayed idle for over 90 s after its
// config was replaced (the BGP gate rightly halted the rollout), and once
// a node's drain never finished. FLEET_DUMP=1 makes a failing run dump
// every node's goroutines (SIGQUIT) into the log.
func TestRolloutWithBIRD(t *testing.T) {
	if os.Getenv("FLEET_BIRD") == "" {
		t.Skip("opt-in: FLEET_BIRD=1 (see the comment: BGP sessions after an in-process restart are not yet reliable in the lab)")
	}
	testenv.RequireRoot(t)
	for _, tool := range []string{"ip", "bird", "birdc", "gobgpd", "gobgp"} {
		testenv.RequireTool(t, tool)
	}
	bin := testenv.Binary(t)
	nslab.RemoveStale("sf")
	al, err := anylab.Up(anylab.Options{Name: fmt.Sprintf("sf%d", os.Getpid()), Dir: t.TempDir(), Binary: bin})
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
			API:  forwardTCP(t, n.NS, anylab.MgmtAPI),
			DNS:  forwardUDP(t, n.NS, anylab.Anycast4+":53"),
			Vars: map[string]string{"base": string(base)},
		})
	}
	l.url = fmt.Sprintf("http://127.0.0.1:%d", refserver.Port(t))
	l.ctlArgs = []string{"serve", "-store", filepath.Join(l.dir, "fleet.db"), "-listen", strings.TrimPrefix(l.url, "http://"),
		"-poll", "300ms", "-gate-timeout", "25s", "-pass-rounds", "3", "-gate-interval", "300ms", "-min-announcing", "2"}
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
	least, samples := 3, 0
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
			if len(hops) < least {
				least = len(hops)
			}
			mu.Unlock()
		}
	}()

	start := time.Now()
	var ro rollout.Rollout
	l.post("/api/rollouts", map[string]any{"group": "bgp", "template": "{{.Vars.base}}# release 2\n",
		"canaries": []rollout.Query{{Name: anylab.Zone, Type: "SOA"}}}, &ro)
	done := l.waitState(ro.ID, 3*time.Minute, rollout.Completed, rollout.Halted)
	close(stop)
	<-watched
	if done.State != rollout.Completed {
		t.Fatalf("rollout %s: %s", done.State, done.Halt)
	}
	t.Logf("3-node config rollout over real BGP: %s, %d router samples", time.Since(start).Round(time.Millisecond), samples)
	for _, rn := range done.Nodes {
		for _, g := range rn.Gates {
			if g.Gate == "bgp" && (g.Outcome != rollout.Pass || !strings.Contains(g.Detail, "sessions established")) {
				t.Errorf("%s: bgp gate %s: %s", rn.Name, g.Outcome, g.Detail)
			}
		}
	}
	if got := done.MaxOut["eu "+anylab.Primary4P]; got != 1 {
		t.Errorf("%d nodes of the prefix were out at once, want 1", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if least < 2 {
		t.Errorf("the router had %s via only %d nodes during the rollout", primary, least)
	}
	if least > 2 {
		t.Errorf("the router always had %s via all 3 nodes: no node drained while updated", primary)
	}
	if err := al.WaitConverged(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}
