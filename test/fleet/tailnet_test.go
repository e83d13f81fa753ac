package fleet

import (
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tailscale.com/net/netns"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/logger"

	"github.com/shoestring-dns/shoestring/cmd/fleet/desired"
	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/web"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

const tsAuthKey = "tskey-shoestring-fleet-test"

// TestTailnetDiscoveryAndApply runs a node (the firmware binary) on a
// tailnet (tailscale's testcontrol, in-process) and the controller as a
// member of it with tag:ops, which the node maps to admin: the node shows
// up "unassigned" with its live state read over the tailnet; assigned to
// a group, its desired config is applied over the tailnet.
func TestTailnetDiscoveryAndApply(t *testing.T) {
	netns.SetEnabled(false)
	t.Cleanup(func() { netns.SetEnabled(true) })
	derpMap := integration.RunDERPAndSTUN(t, logger.Discard, "127.0.0.1")
	control := &testcontrol.Server{
		DERPMap: derpMap, DNSConfig: &tailcfg.DNSConfig{Proxied: true}, MagicDNSDomain: "fleet.test",
		RequireAuthKey: tsAuthKey, TagOwners: map[string][]string{"tag:ops": nil, "tag:dns": nil},
		AllOnline: true, Logf: logger.Discard,
	}
	cs := httptest.NewServer(control)
	t.Cleanup(cs.Close)

	dir := t.TempDir()
	zones := filepath.Join(dir, "zones")
	os.MkdirAll(zones, 0o755)
	os.WriteFile(filepath.Join(zones, "v1.zone"), []byte(zoneV1), 0o644)
	os.WriteFile(filepath.Join(zones, "v2.zone"), []byte(zoneV2), 0o644)
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", refserver.Port(t))
	cfg := &config.Config{DataDir: filepath.Join(dir, "data")}
	cfg.Node.Name = "tn1"
	cfg.DNS.Listen = []config.HostPort{config.HostPort(dnsAddr)}
	cfg.Zones = []config.Zone{{Origin: "rollout.test", File: filepath.Join(zones, "v1.zone")}}
	cfg.Overlay.Enabled = true
	cfg.Overlay.ControlURL = cs.URL
	cfg.Overlay.AuthKey = tsAuthKey
	cfg.Overlay.Tags = []string{"tag:dns"}
	cfg.Overlay.Access.Admin = []string{"tag:ops"}
	cfg.Overlay.Port = refserver.Port(t)
	cfg.SetDefaults()
	doc, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "node.yaml")
	os.WriteFile(file, doc, 0o600)
	nodeLog := &testenv.SyncBuffer{}
	node := exec.Command(testenv.Binary(t), "run", "-config", file)
	node.Stderr = nodeLog
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		node.Process.Kill()
		node.Wait()
		if t.Failed() {
			t.Logf("node log:\n%s", tail(nodeLog.String(), 40))
		}
	})

	l := &lab{t: t, dir: dir, procs: map[string]*exec.Cmd{}}
	l.url = fmt.Sprintf("http://127.0.0.1:%d", refserver.Port(t))
	l.ctlArgs = []string{"serve", "-store", filepath.Join(dir, "fleet.db"), "-listen", strings.TrimPrefix(l.url, "http://"), "-poll", "500ms",
		"-tailnet-control", cs.URL, "-tailnet-authkey", tsAuthKey, "-tailnet-tags", "tag:ops", "-tailnet-discover", "tag:dns"}
	l.startController()
	t.Cleanup(func() {
		l.ctl.Process.Kill()
		l.ctl.Wait()
		if t.Failed() {
			t.Logf("controller log:\n%s", tail(l.ctlLog.String(), 40))
		}
	})

	findNode := func(what string, ok func(web.NodeView) bool) web.NodeView {
		deadline := time.Now().Add(90 * time.Second)
		for {
			var nodes []web.NodeView
			l.call("GET", "/api/nodes", nil, &nodes)
			for _, n := range nodes {
				if n.Name == "tn1" && ok(n) {
					return n
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, nodes)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	start := time.Now()
	n := findNode("discovered unassigned and reached over the tailnet", func(n web.NodeView) bool {
		return n.Unassigned && n.Live.Reached && n.Live.Config != nil
	})
	t.Logf("node discovered and polled over the tailnet after %s (api %s)", time.Since(start).Round(time.Millisecond), n.API)

	// Assigned to a group whose template moves its zone to v2.
	assigned := inventory.Node{Name: "tn1", API: n.API, DNS: dnsAddr, Site: "lab", Region: "eu", Group: "tn"}
	l.post("/api/nodes", assigned, nil)
	tmpl := strings.Replace(string(doc), "v1.zone", "v2.zone", 1)
	l.call("PUT", "/api/groups/tn", strings.NewReader(tmpl), nil)
	l.call("POST", "/api/nodes/tn1/correct", nil, nil)
	n = findNode("runs the desired config", func(n web.NodeView) bool { return n.Drift == "in sync" && n.Live.Reached })
	if n.Live.Config.Generation != 1 || n.Live.Config.Hash != desired.Hash([]byte(tmpl)) || n.Unassigned {
		t.Fatalf("after correct: %+v", n)
	}
	if got := answer(t, inventory.Node{Name: "tn1", DNS: dnsAddr}); got != "192.0.2.20" {
		t.Fatalf("the node answers %s after the apply", got)
	}
}
