package fleet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/ota/agent/agenttest"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestFirmwareRollout rolls signed firmware bundles out to six nodes that
// run as a plain Linux host runs them: `shoestring launch -slots DIR --
// run …` (binary A/B slots) under a loop playing systemd's
// Restart=always. The controller uploads each bundle through the node's
// update API (POST /api/v1/update); the node installs it into its
// inactive slot, restarts into it, soaks it and commits it, and the
// controller gates on the committed slot. v1.0.0 completes on all six.
// v1.1.0's binary, on the one box of its first wave that has a
// fail-soak file, comes up with a BGP session that never establishes:
// its health fails the soak, the node marks the slot bad and falls back
// to its committed slot, the rollout halts on it and the second wave
// never starts.
func TestFirmwareRollout(t *testing.T) {
	bin := testenv.Binary(t)
	self, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	signer, pub := agenttest.Key(t, "fleet-test")
	good := agenttest.HostBundle(t, dir, "v1.0.0", signer, self)
	// The bad release runs the same node software, but on a box with
	// DIR/fail-soak.yaml it starts with that file as its config (its own plus
	// an unreachable BGP neighbour).
	script := fmt.Sprintf("#!/bin/sh\nd=$(dirname \"$0\")\nif [ -e \"$d/fail-soak.yaml\" ]; then\n  exec %s run -config \"$d/fail-soak.yaml\" -slots \"$d\" -board qemu-amd64\nfi\nexec %s \"$@\"\n", bin, bin)
	bad := agenttest.HostBundle(t, dir, "v1.1.0", signer, []byte(script))

	ports, err := refserver.Ports(2*6 + 1)
	if err != nil {
		t.Fatal(err)
	}
	zoneFile := filepath.Join(dir, "rollout.test.zone")
	os.WriteFile(zoneFile, []byte(zoneV1), 0o644)
	l := &lab{t: t, dir: dir, procs: map[string]*exec.Cmd{}}
	slots := map[string]string{}
	configs := map[string]string{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 6 {
		n := inventory.Node{
			Name: fmt.Sprintf("fw%d", i+1), Site: fmt.Sprintf("site%d", i+1), Region: "eu", Group: "fw",
			Wave: []string{"1", "2"}[i/3],
			API:  fmt.Sprintf("127.0.0.1:%d", ports[2*i]), DNS: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
		}
		sd := filepath.Join(dir, n.Name+"-slots")
		os.MkdirAll(sd, 0o755)
		if err := os.WriteFile(filepath.Join(sd, "shoestring.A"), self, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Symlink("shoestring.A", filepath.Join(sd, "committed"))
		cfg := filepath.Join(dir, n.Name+".yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`node:
  name: %[1]s
data_dir: %[2]s
dns:
  listen: ["%[3]s"]
  nsid: %[1]s
management:
  listen: %[4]s
zones:
  - origin: rollout.test
    file: %[5]s
ota:
  keys: ["%[6]s"]
  soak: 5s
`, n.Name, filepath.Join(dir, n.Name), n.DNS, n.API, zoneFile, pub)), 0o644)
		slots[n.Name], configs[n.Name] = sd, cfg
		l.nodes = append(l.nodes, n)
		// systemd's Restart=always: the node exits to "reboot".
		log := &testenv.SyncBuffer{}
		wg.Go(func() {
			for {
				cmd := exec.Command(bin, "launch", "-slots", sd, "--", "run", "-config", cfg, "-slots", sd, "-board", "qemu-amd64")
				cmd.Stderr = log
				if err := cmd.Start(); err != nil {
					t.Error(err)
					return
				}
				exited := make(chan struct{})
				go func() { cmd.Wait(); close(exited) }()
				select {
				case <-stop:
					cmd.Process.Kill()
					<-exited
					return
				case <-exited:
				}
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("node %s log (tail):\n%s", n.Name, tail(log.String(), 25))
			}
		})
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	l.url = fmt.Sprintf("http://127.0.0.1:%d", ports[len(ports)-1])
	l.ctlArgs = []string{"serve", "-store", filepath.Join(dir, "fleet.db"), "-listen", strings.TrimPrefix(l.url, "http://"),
		"-poll", "300ms", "-gate-timeout", "10s", "-pass-rounds", "2", "-gate-interval", "300ms"}
	l.startController()
	t.Cleanup(func() {
		l.ctl.Process.Kill()
		l.ctl.Wait()
		if t.Failed() {
			t.Logf("controller log (tail):\n%s", tail(l.ctlLog.String(), 30))
		}
	})
	for _, n := range l.nodes {
		l.waitNode(n)
		l.post("/api/nodes", n, nil)
	}
	upload := func(path string) rollout.BundleInfo {
		t.Helper()
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var info rollout.BundleInfo
		l.call("POST", "/api/bundles", f, &info)
		return info
	}
	canaries := []rollout.Query{{Name: "www.rollout.test.", Type: "A"}}
	slotsOf := func(name string) api.SlotsStatus {
		t.Helper()
		for _, n := range l.nodes {
			if n.Name == name {
				s, err := api.NewClient(n.API).Slots()
				if err != nil {
					t.Fatalf("%s: slots: %v", name, err)
				}
				return s
			}
		}
		t.Fatalf("no node %s", name)
		return api.SlotsStatus{}
	}
	version := func(s api.SlotsStatus) string {
		for _, sl := range s.Slots {
			if sl.Name == s.Committed {
				return sl.Version
			}
		}
		return ""
	}

	// v1.0.0: every node commits it.
	info := upload(good)
	if info.Version != "v1.0.0" {
		t.Fatalf("bundle info: %+v", info)
	}
	start := time.Now()
	var ro rollout.Rollout
	l.post("/api/rollouts", map[string]any{"group": "fw", "kind": "firmware", "bundle": info.ID, "canaries": canaries}, &ro)
	done := l.waitState(ro.ID, 4*time.Minute, rollout.Completed, rollout.Halted)
	if done.State != rollout.Completed {
		t.Fatalf("v1.0.0 rollout %s: %s", done.State, done.Halt)
	}
	t.Logf("6-node firmware rollout (upload, install, restart, 5 s soak, commit; canary + 2 waves): %s", time.Since(start).Round(time.Millisecond))
	for _, n := range l.nodes {
		if s := slotsOf(n.Name); s.Committed != "B" || s.Booted != "B" || version(s) != "v1.0.0" {
			t.Errorf("%s after v1.0.0: committed %s booted %s version %s", n.Name, s.Committed, s.Booted, version(s))
		}
	}
	if t.Failed() {
		return
	}

	// v1.1.0 fails the soak on one node of its first wave.
	info = upload(bad)
	l.post("/api/rollouts", map[string]any{"group": "fw", "kind": "firmware", "bundle": info.ID, "canaries": canaries}, &ro)
	victim := ro.Waves[1].Nodes[0]
	failCfg, _ := os.ReadFile(configs[victim])
	failCfg = append(failCfg, []byte("bgp:\n  asn: 65053\n  router_id: 192.0.2.53\n  peers:\n    - name: nobody\n      address: 127.0.0.1\n      port: 9\n      asn: 65000\n")...)
	if err := os.WriteFile(filepath.Join(slots[victim], "fail-soak.yaml"), failCfg, 0o644); err != nil {
		t.Fatal(err)
	}
	halted := l.waitState(ro.ID, 4*time.Minute, rollout.Completed, rollout.Halted)
	if halted.State != rollout.Halted || !strings.HasPrefix(halted.Halt, victim+": ") || !strings.Contains(halted.Halt, "rolled_back") {
		t.Fatalf("v1.1.0: %s %q, want halted on %s's rolled-back trial", halted.State, halted.Halt, victim)
	}
	t.Logf("halted: %s", halted.Halt)
	if s := slotsOf(victim); s.Committed != "B" || s.Booted != "B" || version(s) != "v1.0.0" || s.Slots[0].Status != "bad" {
		t.Errorf("%s after its failed trial: committed %s booted %s version %s, slot A %s", victim, s.Committed, s.Booted, version(s), s.Slots[0].Status)
	}
	for _, rn := range halted.Nodes {
		if rn.Wave < 2 {
			continue
		}
		if rn.State != rollout.NodePending || rn.Put {
			t.Errorf("%s in wave 2 was touched: %s", rn.Name, rn.State)
		}
		if s := slotsOf(rn.Name); version(s) != "v1.0.0" || (s.Last != nil && s.Last.Version == "v1.1.0") {
			t.Errorf("%s in wave 2 saw v1.1.0: %+v", rn.Name, s.Last)
		}
	}
	// Revert: the node that failed is on its previous firmware already.
	l.call("POST", "/api/rollouts/"+ro.ID+"/revert", nil, nil)
	reverted := l.waitState(ro.ID, time.Minute, rollout.Reverted)
	for _, rn := range reverted.Nodes {
		if rn.Name == victim && rn.State != rollout.NodeReverted {
			t.Errorf("%s after the revert: %s %s", victim, rn.State, rn.Error)
		}
	}
	// The release is quarantined: not offered again.
	err = l.try("POST", "/api/rollouts", strings.NewReader(fmt.Sprintf(`{"group":"fw","kind":"firmware","bundle":%q}`, info.ID)), nil)
	if err == nil || !strings.Contains(err.Error(), "quarantined") {
		t.Errorf("the quarantined bundle offered again: %v", err)
	}
}
