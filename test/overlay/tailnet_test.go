package overlay

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"tailscale.com/envknob"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestTailnet is the overlay on one in-process tailnet (tailscale's
// testcontrol, DERP and STUN on loopback): two nodes — one in this
// process, one the firmware binary — an operator tagged tag:ops (admin by
// the nodes' access policy), a viewer (any other identity: read-only), and
// ctl joining the tailnet itself.
func TestTailnet(t *testing.T) {
	l := newTestcontrolLab(t)
	ops := l.client("ops", "tag:ops")
	// Joining turned log upload and port mapping off for the process.
	if !envknob.NoLogsNoSupport() || os.Getenv("TS_DISABLE_PORTMAPPER") != "1" {
		t.Fatal("log upload or port mapping left on")
	}
	collector := startCollector(t, ops, 6000)
	viewer := l.client("viewer")

	cfg1 := l.nodeConfig("ns1", freePort(t))
	cfg1.Overlay.Dnstap.Target = "ops:6000" // by tailnet name, over the tailnet
	identityAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg1.Overlay.Identity.Listen = []config.HostPort{config.HostPort(identityAddr)}
	ns1 := l.startNode(cfg1)
	ns2 := l.startBinary(l.nodeConfig("ns2", freePort(t)))

	opc, vc := ops.HTTPClient(), viewer.HTTPClient()
	l.waitAPI(opc, ns1)
	l.waitAPI(opc, ns2)

	t.Run("RolesByIdentity", func(t *testing.T) {
		for _, rn := range []*runningNode{ns1, ns2} {
			code, body := call(t, opc, "GET", apiURL(rn, "/api/v1/whoami"), nil)
			if w := decode[api.Caller](t, body); code != 200 || w.Role != api.RoleAdmin || len(w.Tags) == 0 || w.Tags[0] != "tag:ops" {
				t.Fatalf("%s: operator is %d %+v, want admin by tag:ops", rn.name, code, w)
			}
			code, body = call(t, vc, "GET", apiURL(rn, "/api/v1/whoami"), nil)
			if w := decode[api.Caller](t, body); code != 200 || w.Role != api.RoleRead || w.Login == "" {
				t.Fatalf("%s: viewer is %d %+v, want read by login", rn.name, code, w)
			}
			// Reading is open to both.
			for _, c := range []*http.Client{opc, vc} {
				code, body := call(t, c, "GET", apiURL(rn, "/api/v1/zones"), nil)
				if zs := decode[[]api.ZoneInfo](t, body); code != 200 || len(zs) != 1 || zs[0].Origin != "example.org." {
					t.Fatalf("%s: zones: %d %s", rn.name, code, body)
				}
			}
			// Changing is not, and the node says who was refused.
			newZone := []byte(strings.Replace(exampleZone, " 1 3600", " 7 3600", 1))
			for _, req := range []struct{ method, path string }{
				{"PUT", "/api/v1/zones/example.org"},
				{"DELETE", "/api/v1/zones/example.org"},
				{"PUT", "/api/v1/zones/other.example"},
			} {
				code, body := call(t, vc, req.method, apiURL(rn, req.path), newZone)
				if code != http.StatusForbidden || !strings.Contains(string(body), "admin role needed") {
					t.Fatalf("%s: viewer %s %s: %d %s, want 403", rn.name, req.method, req.path, code, body)
				}
			}
			if r := query(t, rn.dnsAddr, "example.org", dns.TypeSOA, false); r.Answer[0].(*dns.SOA).Serial != 1 {
				t.Fatalf("%s: a refused change changed the zone: %v", rn.name, r.Answer[0])
			}
			// The operator may, and is logged by name.
			code, body = call(t, opc, "PUT", apiURL(rn, "/api/v1/zones/example.org"), newZone)
			if code != 200 {
				t.Fatalf("%s: operator PUT: %d %s", rn.name, code, body)
			}
			if r := query(t, rn.dnsAddr, "example.org", dns.TypeSOA, false); r.Answer[0].(*dns.SOA).Serial != 7 {
				t.Fatalf("%s: zone not updated: %v", rn.name, r.Answer[0])
			}
			waitLog(t, rn, `msg="management: change" who="ops tag:ops" method=PUT path=/api/v1/zones/example.org`)
			waitLog(t, rn, `msg="management: change refused" who="`)
		}
	})

	t.Run("NotReachableElsewhere", func(t *testing.T) {
		// The binary node is its own process: every socket it listens on
		// is DNS, or WireGuard's UDP port (which answers only peers).
		checkSockets(t, ns2)
		// And the management ports refuse on every address the box has.
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			ip := a.(*net.IPNet).IP
			if ip.IsLinkLocalUnicast() {
				continue
			}
			for _, port := range []int{80, 8053, ns2.cfg.Overlay.HTTPPort} {
				addr := net.JoinHostPort(ip.String(), fmt.Sprint(port))
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
					t.Errorf("management port open on %s", addr)
				}
			}
		}
	})

	t.Run("MetricsMove", func(t *testing.T) { testMetrics(t, opc, ns1) })

	t.Run("DNSOverTheTailnet", func(t *testing.T) {
		// What secondaries and primaries use: DNS on the node's tailnet
		// address, UDP and TCP.
		for _, network := range []string{"udp", "tcp"} {
			ctx, cancel := context.WithTimeout(l.ctx, 20*time.Second)
			conn, err := ops.Dial(ctx, network, "ns2:53")
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			m := new(dns.Msg)
			m.SetQuestion("www.example.org.", dns.TypeA)
			co := &dns.Conn{Conn: conn}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if err := co.WriteMsg(m); err != nil {
				t.Fatal(err)
			}
			r, err := co.ReadMsg()
			conn.Close()
			if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.80" {
				t.Fatalf("%s over the tailnet: %v %v", network, r, err)
			}
		}
	})

	t.Run("Dnstap", func(t *testing.T) {
		query(t, ns1.dnsAddr, "dnstap-probe.example.org", dns.TypeAAAA, false)
		collector.waitFor(t, "ns1", "dnstap-probe.example.org.", dns.RcodeNameError)
		code, body := call(t, opc, "GET", apiURL(ns1, "/api/v1/overview"), nil)
		o := decode[api.Overview](t, body)
		if code != 200 || o.Dnstap == nil || !o.Dnstap.Connected || o.Dnstap.Sent == 0 {
			t.Fatalf("overview dnstap: %d %+v", code, o.Dnstap)
		}
	})

	t.Run("IdentityEndpoint", func(t *testing.T) {
		resp, err := http.Get("http://" + identityAddr + "/")
		if err != nil {
			t.Fatal(err)
		}
		var id api.Identity
		err = decodeBody(resp, &id)
		if err != nil || id.Name != "ns1" || id.Location != "Lab rack ns1" || id.Serials["example.org."] == 0 {
			t.Fatalf("identity: %+v %v", id, err)
		}
		resp, err = http.Post("http://"+identityAddr+"/", "text/plain", nil)
		if err == nil {
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("identity endpoint took a POST: %v %v", resp, err)
		}
		// Only the identity is there, not the API.
		resp, err = http.Get("http://" + identityAddr + "/api/v1/zones")
		if err == nil {
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("identity endpoint serves more than the identity: %v %v", resp, err)
		}
	})

	t.Run("CtlOverTheTailnet", func(t *testing.T) {
		ctl := func(args ...string) (string, error) {
			all := append([]string{"ctl", "-api", "ns2", "-authkey", authKey, "-control", l.controlURL}, args...)
			cmd := exec.Command(testenv.Binary(t), all...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			return out.String(), err
		}
		out, err := ctl("zones")
		if err != nil || !strings.Contains(out, "example.org.") || !strings.Contains(out, "SERIAL") {
			t.Fatalf("ctl zones: %v\n%s", err, out)
		}
		out, err = ctl("-json", "whoami")
		if err != nil || !strings.Contains(out, `"role": "read"`) {
			t.Fatalf("ctl whoami: %v\n%s", err, out)
		}
		out, err = ctl("tailnet")
		if err != nil || !strings.Contains(out, "ns1."+magicDomain) || !strings.Contains(out, "ops."+magicDomain) {
			t.Fatalf("ctl tailnet: %v\n%s", err, out)
		}
		file := filepath.Join(t.TempDir(), "z")
		os.WriteFile(file, []byte(exampleZone), 0o644)
		out, err = ctl("put", "example.org", file)
		if err == nil || !strings.Contains(out, "403") {
			t.Fatalf("ctl put as a reader: %v\n%s", err, out)
		}
	})

	t.Run("StatusPageInChromium", func(t *testing.T) { testStatusPage(t, ops, ns1) })
}

// waitLog waits for a line in the node's log.
func waitLog(t *testing.T, rn *runningNode, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(rn.log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q", rn.name, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
