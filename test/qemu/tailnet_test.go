package qemu

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"tailscale.com/net/netns"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/logger"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/overlay"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// The management API of a box is reached over its tailnet only, so the
// test runs one: tailscale's testcontrol with DERP, in this process, and
// an operator member (tag:ops, admin by the node's access policy). The
// guest reaches the host as 10.0.2.2 through QEMU's user network, which
// lands on the host's loopback; the host reaches the same DERP address
// because the test puts 10.0.2.2/32 on its lo (root, removed afterwards).
const (
	tailnetKey  = "tskey-shoestring-qemu"
	hostAlias   = "10.0.2.2"
	guestToHost = "10.0.2.2"
)

type testTailnet struct {
	guestControlURL string
	ops             *overlay.Tailnet
	log             *testenv.SyncBuffer
}

func startTailnet(t *testing.T) *testTailnet {
	t.Helper()
	testenv.RequireRoot(t)
	ip := testenv.RequireTool(t, "ip")
	if out, err := exec.Command(ip, "addr", "add", hostAlias+"/32", "dev", "lo").CombinedOutput(); err != nil && !strings.Contains(string(out), "File exists") && !strings.Contains(string(out), "already assigned") {
		t.Fatalf("ip addr add %s/32 dev lo: %v: %s", hostAlias, err, out)
	} else if err == nil {
		t.Cleanup(func() { exec.Command(ip, "addr", "del", hostAlias+"/32", "dev", "lo").Run() })
	}
	// Marking sockets buys nothing here and needs privileges.
	netns.SetEnabled(false)
	t.Cleanup(func() { netns.SetEnabled(true) })

	// DERP on every address: the guest arrives on 127.0.0.1 (QEMU's NAT),
	// the operator on 10.0.2.2; both find it at 10.0.2.2 in the map.
	derpMap := integration.RunDERPAndSTUN(t, logger.Discard, "0.0.0.0")
	for _, r := range derpMap.Regions {
		for _, n := range r.Nodes {
			n.HostName, n.IPv4, n.STUNTestIP = guestToHost, guestToHost, guestToHost
		}
	}
	control := &testcontrol.Server{
		DERPMap:        derpMap,
		DNSConfig:      &tailcfg.DNSConfig{Proxied: true},
		MagicDNSDomain: "shoestring.test",
		RequireAuthKey: tailnetKey,
		TagOwners:      map[string][]string{"tag:ops": nil, "tag:dns": nil},
		AllOnline:      true,
		Logf:           logger.Discard,
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(control)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	port := ln.Addr().(*net.TCPAddr).Port

	tn := &testTailnet{guestControlURL: "http://" + net.JoinHostPort(guestToHost, strconv.Itoa(port)), log: &testenv.SyncBuffer{}}
	tn.ops, err = overlay.New(overlay.Options{
		Hostname: "ops", ControlURL: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		AuthKey: tailnetKey, Tags: []string{"tag:ops"}, Ephemeral: true,
		Log: slog.New(slog.NewTextHandler(tn.log, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		tn.ops.Close()
		if t.Failed() {
			t.Logf("operator's tailnet log:\n%s", tn.log.String())
		}
	})
	go tn.ops.Run(ctx)
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := tn.ops.WaitUp(wctx); err != nil {
		t.Fatalf("operator on the tailnet: %v", err)
	}
	return tn
}

// apiClient reaches a node's management API by its tailnet name.
func (tn *testTailnet) apiClient(name string) *api.Client {
	c := api.NewClient("http://" + name)
	hc := tn.ops.HTTPClient()
	hc.Timeout = 30 * time.Second
	c.HTTP = hc
	return c
}

// waitAPI waits until the node answers /healthz over the tailnet.
func waitAPI(ctx context.Context, c *api.Client, exited <-chan struct{}) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.Base+"/healthz", nil)
		resp, err := c.HTTP.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return context.Canceled
		case <-time.After(500 * time.Millisecond):
		}
	}
}
