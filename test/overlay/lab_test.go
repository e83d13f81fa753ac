package overlay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
	"tailscale.com/net/netns"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/logger"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/node"
	"github.com/shoestring-dns/shoestring/firmware/overlay"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// authKey is what every member of the test tailnets registers with; the
// control servers refuse anything else.
const authKey = "tskey-shoestring-test"

// magicDomain is the testcontrol tailnet's MagicDNS domain.
const magicDomain = "shoestring.test"

const exampleZone = `$TTL 300
@ IN SOA ns1 hostmaster 1 3600 900 1209600 60
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
`

// lab is one test tailnet: a control server and the members the test
// starts on it.
type lab struct {
	t          *testing.T
	ctx        context.Context
	controlURL string
	derpMap    *tailcfg.DERPMap
	clientLog  *testenv.SyncBuffer // the clients' warnings, shown when a test fails
}

// newTestcontrolLab starts tailscale's test control server with its DERP
// and STUN servers, all in-process on loopback: no network beyond it.
func newTestcontrolLab(t *testing.T) *lab {
	// Marking sockets (netns) needs privileges the test may not have and
	// buys nothing on loopback.
	netns.SetEnabled(false)
	t.Cleanup(func() { netns.SetEnabled(true) })
	derpMap := integration.RunDERPAndSTUN(t, logger.Discard, "127.0.0.1")
	control := &testcontrol.Server{
		DERPMap:        derpMap,
		DNSConfig:      &tailcfg.DNSConfig{Proxied: true},
		MagicDNSDomain: magicDomain,
		RequireAuthKey: authKey,
		// Non-nil: nodes get the tags they ask for when they register.
		TagOwners: map[string][]string{"tag:ops": nil, "tag:dns": nil},
		AllOnline: true,
		Logf:      logger.Discard,
	}
	srv := httptest.NewServer(control)
	t.Cleanup(srv.Close)
	return newLab(t, srv.URL, derpMap)
}

func newLab(t *testing.T, controlURL string, derpMap *tailcfg.DERPMap) *lab {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	l := &lab{t: t, ctx: ctx, controlURL: controlURL, derpMap: derpMap, clientLog: &testenv.SyncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tailnet clients' log:\n%s", l.clientLog.String())
		}
	})
	return l
}

// client joins the tailnet as an ephemeral member (an operator's laptop,
// a monitoring box) and waits until it is up.
func (l *lab) client(name string, tags ...string) *overlay.Tailnet {
	l.t.Helper()
	return l.clientWithKey(name, authKey, tags...)
}

// clientWithKey joins with a key of its own (headscale's are per user).
func (l *lab) clientWithKey(name, key string, tags ...string) *overlay.Tailnet {
	l.t.Helper()
	tn, err := overlay.New(overlay.Options{
		Hostname:   name,
		ControlURL: l.controlURL,
		AuthKey:    key,
		Tags:       tags,
		Ephemeral:  true,
		Log:        slog.New(slog.NewTextHandler(l.clientLog, &slog.HandlerOptions{Level: slog.LevelInfo})).With("client", name),
	})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { tn.Close() })
	go tn.Run(l.ctx)
	ctx, cancel := context.WithTimeout(l.ctx, 60*time.Second)
	defer cancel()
	if err := tn.WaitUp(ctx); err != nil {
		l.t.Fatalf("%s: %v", name, err)
	}
	return tn
}

// runningNode is a node of the lab, in this process or as the firmware
// binary.
type runningNode struct {
	name    string
	dnsAddr string
	log     *testenv.SyncBuffer
	cfg     *config.Config
	cmd     *exec.Cmd // nil for an in-process node
}

// nodeConfig is a node's config document: DNS on loopback, management on
// the lab's tailnet, the example zone from a file.
func (l *lab) nodeConfig(name string, dnsPort int) *config.Config {
	dir := l.t.TempDir()
	zoneFile := filepath.Join(dir, "example.org.zone")
	if err := os.WriteFile(zoneFile, []byte(exampleZone), 0o644); err != nil {
		l.t.Fatal(err)
	}
	cfg := &config.Config{DataDir: filepath.Join(dir, "data")}
	cfg.Node.Name = name
	cfg.Node.Location = "Lab rack " + name
	cfg.DNS.Listen = []config.HostPort{config.HostPort(fmt.Sprintf("127.0.0.1:%d", dnsPort))}
	cfg.DNS.UDPWorkers = 1
	cfg.Zones = []config.Zone{{Origin: "example.org", File: zoneFile}}
	cfg.Overlay.Enabled = true
	cfg.Overlay.ControlURL = l.controlURL
	cfg.Overlay.AuthKey = authKey
	cfg.Overlay.Tags = []string{"tag:dns"}
	cfg.Overlay.Access.Admin = []string{"tag:ops"}
	cfg.Overlay.Port = freePort(l.t)
	return cfg
}

// startNode runs a node in this process.
func (l *lab) startNode(cfg *config.Config) *runningNode {
	l.t.Helper()
	cfg.SetDefaults()
	rn := &runningNode{name: cfg.Node.Name, log: &testenv.SyncBuffer{}, cfg: cfg}
	ready := make(chan []string, 1)
	n := node.New(node.Options{
		Config:  cfg,
		Logger:  slog.New(slog.NewTextHandler(rn.log, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Version: "test",
		OnReady: func(dnsAddrs []string, _ string) { ready <- dnsAddrs },
	})
	ctx, cancel := context.WithCancel(l.ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	l.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				l.t.Errorf("%s: %v", rn.name, err)
			}
		case <-time.After(20 * time.Second):
			l.t.Errorf("%s did not stop", rn.name)
		}
		if l.t.Failed() {
			l.t.Logf("%s log:\n%s", rn.name, rn.log.String())
		}
	})
	select {
	case addrs := <-ready:
		rn.dnsAddr = addrs[0]
	case err := <-done:
		l.t.Fatalf("%s: %v\n%s", rn.name, err, rn.log.String())
	case <-time.After(60 * time.Second):
		l.t.Fatalf("%s not ready\n%s", rn.name, rn.log.String())
	}
	return rn
}

// startBinary runs a node as the firmware binary (built with the overlay's
// build tags, as `make build` does), from a config file.
func (l *lab) startBinary(cfg *config.Config) *runningNode {
	l.t.Helper()
	cfg.SetDefaults()
	b, err := cfg.Marshal()
	if err != nil {
		l.t.Fatal(err)
	}
	file := filepath.Join(l.t.TempDir(), "node.yaml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		l.t.Fatal(err)
	}
	rn := &runningNode{name: cfg.Node.Name, log: &testenv.SyncBuffer{}, cfg: cfg, dnsAddr: string(cfg.DNS.Listen[0])}
	rn.cmd = exec.Command(testenv.Binary(l.t), "run", "-config", file)
	rn.cmd.Stderr = rn.log
	if err := rn.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		rn.cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- rn.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				l.t.Errorf("%s exited: %v", rn.name, err)
			}
		case <-time.After(20 * time.Second):
			rn.cmd.Process.Kill()
			l.t.Errorf("%s did not stop within 20 s of SIGINT", rn.name)
		}
		if l.t.Failed() {
			l.t.Logf("%s log:\n%s", rn.name, rn.log.String())
		}
	})
	return rn
}

// waitAPI waits until the node's API answers over the tailnet, by name.
func (l *lab) waitAPI(c *http.Client, rn *runningNode) {
	l.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+rn.name+"/healthz", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			cancel()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		cancel()
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	l.t.Fatalf("%s: API not reachable over the tailnet: %v\n%s", rn.name, last, rn.log.String())
}

// call makes one API request and returns the status code and body.
func call(t *testing.T, c *http.Client, method, url string, body []byte) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

// query asks addr over UDP (or TCP) and returns the answer.
func query(t *testing.T, addr, name string, qtype uint16, tcp bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Timeout: 3 * time.Second}
	if tcp {
		c.Net = "tcp"
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s at %s: %v", name, dns.TypeToString[qtype], addr, err)
	}
	return r
}

// freePort returns a port free on loopback for TCP and UDP just now.
func freePort(t *testing.T) int { return refserver.Port(t) }

// apiURL is a node's management API by tailnet name.
func apiURL(rn *runningNode, path string) string { return "http://" + rn.name + path }
