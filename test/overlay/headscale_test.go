package overlay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"tailscale.com/tstest/integration"
	"tailscale.com/types/logger"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestHeadscale joins two nodes to a tailnet run by a real headscale, the
// control server a fleet would self-host, built from the version pinned in
// tools/go.mod. Users are headscale's own (created with its CLI): the
// operator is admin by login name, another user is read-only.
func TestHeadscale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs headscale")
	}
	hs := startHeadscale(t)
	fleet := hs.user(t, "fleet", "fleet@example.net")
	alice := hs.user(t, "alice", "alice@example.net")
	bob := hs.user(t, "bob", "bob@example.net")

	l := newLab(t, hs.url, nil)
	cfg := func(name string) *config.Config {
		c := l.nodeConfig(name, freePort(t))
		c.Overlay.AuthKey = fleet
		c.Overlay.Tags = nil // headscale gives tags by policy, not by asking
		c.Overlay.Access.Admin = []string{"alice@example.net"}
		return c
	}
	ns1 := l.startNode(cfg("ns1"))
	ns2 := l.startNode(cfg("ns2"))
	ac := l.clientWithKey("alice-laptop", alice).HTTPClient()
	bc := l.clientWithKey("bob-laptop", bob).HTTPClient()
	l.waitAPI(ac, ns1)
	l.waitAPI(ac, ns2)

	for _, rn := range []*runningNode{ns1, ns2} {
		code, body := call(t, ac, "GET", apiURL(rn, "/api/v1/whoami"), nil)
		if w := decode[api.Caller](t, body); code != 200 || w.Role != api.RoleAdmin || w.Login != "alice@example.net" {
			t.Fatalf("%s: alice is %d %+v", rn.name, code, w)
		}
		code, body = call(t, bc, "GET", apiURL(rn, "/api/v1/whoami"), nil)
		if w := decode[api.Caller](t, body); code != 200 || w.Role != api.RoleRead || w.Login != "bob@example.net" {
			t.Fatalf("%s: bob is %d %+v", rn.name, code, w)
		}
		newZone := []byte(strings.Replace(exampleZone, " 1 3600", " 9 3600", 1))
		if code, body := call(t, bc, "PUT", apiURL(rn, "/api/v1/zones/example.org"), newZone); code != http.StatusForbidden {
			t.Fatalf("%s: bob changed a zone: %d %s", rn.name, code, body)
		}
		if code, body := call(t, ac, "PUT", apiURL(rn, "/api/v1/zones/example.org"), newZone); code != 200 {
			t.Fatalf("%s: alice could not change a zone: %d %s", rn.name, code, body)
		}
		if r := query(t, rn.dnsAddr, "example.org", dns.TypeSOA, false); r.Answer[0].(*dns.SOA).Serial != 9 {
			t.Fatalf("%s: zone not updated: %v", rn.name, r.Answer[0])
		}
		waitLog(t, rn, `who="alice@example.net (alice-laptop)" method=PUT`)
	}
	// The two nodes see each other on the tailnet.
	code, body := call(t, ac, "GET", apiURL(ns1, "/api/v1/tailnet"), nil)
	tn := decode[api.Tailnet](t, body)
	found := false
	for _, p := range tn.Peers {
		found = found || strings.HasPrefix(p.Name, "ns2.")
	}
	if code != 200 || tn.State != "running" || !found {
		t.Fatalf("ns1 on the tailnet: %d %+v", code, tn)
	}
}

// headscale is a running headscale with its CLI.
type headscale struct {
	bin, cfg, url string
}

func startHeadscale(t *testing.T) *headscale {
	t.Helper()
	bin := headscaleBinary(t)
	dir := t.TempDir()
	derp := integration.RunDERPAndSTUN(t, logger.Discard, "127.0.0.1")
	node := derp.Regions[1].Nodes[0]
	derpYAML := fmt.Sprintf(`regions:
  1:
    regionid: 1
    regioncode: test
    regionname: Test
    nodes:
      - name: t1
        regionid: 1
        hostname: 127.0.0.1
        ipv4: 127.0.0.1
        ipv6: none
        stunport: %d
        derpport: %d
        insecurefortests: true
        stuntestip: 127.0.0.1
`, node.STUNPort, node.DERPPort)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	port := freePort(t)
	hs := &headscale{bin: bin, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	hs.cfg = write("config.yaml", fmt.Sprintf(`server_url: %[1]s
listen_addr: 127.0.0.1:%[2]d
metrics_listen_addr: 127.0.0.1:%[3]d
grpc_listen_addr: 127.0.0.1:%[4]d
noise:
  private_key_path: %[5]s/noise_private.key
prefixes:
  v4: 100.64.0.0/10
  v6: fd7a:115c:a1e0::/48
  allocation: sequential
derp:
  server:
    enabled: false
  urls: []
  paths: [%[6]s]
  auto_update_enabled: false
disable_check_updates: true
database:
  type: sqlite
  sqlite:
    path: %[5]s/db.sqlite
    write_ahead_log: true
log:
  level: warn
policy:
  mode: file
  path: ""
dns:
  magic_dns: true
  base_domain: hs.test
  override_local_dns: false
  nameservers:
    global: []
unix_socket: %[5]s/headscale.sock
unix_socket_permission: "0770"
logtail:
  enabled: false
`, hs.url, port, freePort(t), freePort(t), dir, write("derp.yaml", derpYAML)))

	cmd := exec.Command(bin, "-c", hs.cfg, "serve")
	log := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("headscale log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(hs.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("headscale did not come up: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return hs
}

// cli runs a headscale command against the running server.
func (h *headscale) cli(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, h.bin, append([]string{"-c", h.cfg}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("headscale %v: %v\n%s", args, err, out)
	}
	return out
}

// user creates a headscale user and returns a reusable auth key for it.
func (h *headscale) user(t *testing.T, name, email string) string {
	t.Helper()
	h.cli(t, "users", "create", name, "--email", email)
	var users []struct {
		ID   json.RawMessage `json:"id"`
		Name string          `json:"name"`
	}
	if err := json.Unmarshal(h.cli(t, "users", "list", "-o", "json"), &users); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Name == name {
			id := strings.Trim(string(u.ID), `"`)
			key := strings.TrimSpace(string(h.cli(t, "preauthkeys", "create", "-u", id, "--reusable", "-e", "1h")))
			if i := strings.LastIndexByte(key, '\n'); i >= 0 {
				key = key[i+1:]
			}
			return key
		}
	}
	t.Fatalf("headscale did not list user %s", name)
	return ""
}

// headscaleBinary builds headscale from tools/go.mod, once per version:
// `make tools` leaves it in out/tools; otherwise it is built into the
// user's cache directory, keyed by tools/go.sum, so it is built once per
// machine and version rather than per test run.
func headscaleBinary(t *testing.T) string {
	t.Helper()
	root := testenv.RepoRoot()
	if p := filepath.Join(root, "out", "tools", "headscale"); fileExists(p) {
		return p
	}
	tools := filepath.Join(root, "test", "overlay", "tools")
	sum, err := os.ReadFile(filepath.Join(tools, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(sum)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "shoestring-test", "headscale-"+hex.EncodeToString(h[:6]))
	if fileExists(bin) {
		return bin
	}
	t.Logf("building headscale (once per version) into %s", bin)
	tmp := bin + fmt.Sprintf(".%d", os.Getpid())
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp, "github.com/juanfont/headscale/cmd/headscale")
	cmd.Dir = tools
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		// Without the module proxy (or its cache) there is no headscale:
		// a missing tool, as testenv treats them.
		if !testenv.InCI() {
			t.Skipf("cannot build headscale (run `make tools` with the Go module proxy reachable): %v\n%s", err, out.String())
		}
		t.Fatalf("building headscale: %v\n%s", err, out.String())
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
