package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/overlay"
	"github.com/shoestring-dns/shoestring/test/nslab"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestPrimaryOverTheTailnet is the hidden primary of DESIGN.md: a Knot
// that the node can reach only over the tailnet. Knot runs in a network
// namespace of its own (nothing but its loopback), fronted by a tailnet
// member named "primary" that forwards DNS (UDP and TCP port 53) to it.
// The node names the primary by that tailnet name — in its config for one
// zone, through the API for another — transfers both, and takes a change
// made at the primary when asked to refresh. A node that dialled
// primaries with a plain dialer could not resolve the name, nor reach the
// tailnet address in userspace, nor Knot's namespace.
func TestPrimaryOverTheTailnet(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "knotd")
	knotc := testenv.RequireTool(t, "knotc")

	ns := newNetns(t)
	dir := t.TempDir()
	confZone := filepath.Join(dir, "conf.test.zone")
	apiZone := filepath.Join(dir, "api.test.zone")
	writeZone(t, confZone, "conf.test.", 1, "192.0.2.1")
	writeZone(t, apiZone, "api.test.", 1, "192.0.2.2")
	kc := refserver.KnotConfig{Port: 53, Journal: true, Zones: []refserver.Zone{
		{Origin: "conf.test.", File: confZone},
		{Origin: "api.test.", File: apiZone},
	}}
	argv, err := kc.Write(filepath.Join(dir, "knot"))
	if err != nil {
		t.Fatal(err)
	}
	knot := refserver.Run(t, refserver.Command{Name: "knot", Argv: argv, Prefix: []string{"ip", "netns", "exec", ns.name}})
	ns.waitServing(t, knot, "127.0.0.1:53", "conf.test.", "api.test.")

	l := newTestcontrolLab(t)
	ops := l.client("ops", "tag:ops")
	primary := l.client("primary")
	forwardDNS(t, primary, ns)

	// Not reachable but over the tailnet: the host resolves no tailnet
	// name, and Knot's namespace has no way in but the forwarder.
	if c, err := (&net.Dialer{Timeout: 2 * time.Second}).Dial("tcp", "primary:53"); err == nil {
		c.Close()
		t.Fatal("primary:53 is reachable without the tailnet; the test proves nothing")
	}
	if _, err := refserver.AskSOA("127.0.0.1:53", "conf.test."); err == nil {
		t.Fatal("Knot answers on the host's loopback; the test proves nothing")
	}

	cfg := l.nodeConfig("ns1", freePort(t))
	prim, err := config.ParseRemote("primary") // the short form, port 53
	if err != nil {
		t.Fatal(err)
	}
	cfg.Secondary.Zones = []config.SecondaryZone{{Origin: "conf.test.", Primaries: []config.Remote{prim}}}
	ns1 := l.startNode(cfg)
	opc := ops.HTTPClient()
	l.waitAPI(opc, ns1)

	// The other zone is added through the API, by name and port.
	code, body := call(t, opc, "PUT", apiURL(ns1, "/api/v1/secondary/zones/api.test"), []byte(`{"primaries": ["primary:53"]}`))
	if code != http.StatusOK {
		t.Fatalf("adding a secondary zone with a tailnet primary: %d %s", code, body)
	}

	refresh := func(origin string) {
		code, body := call(t, opc, "POST", apiURL(ns1, "/api/v1/secondary/zones/"+origin+"/refresh"), nil)
		if code != http.StatusAccepted {
			t.Fatalf("refresh %s: %d %s", origin, code, body)
		}
	}
	for _, z := range []struct {
		origin, addr string
	}{{"conf.test.", "192.0.2.1"}, {"api.test.", "192.0.2.2"}} {
		// Refreshes retried before the tailnet was up back off; ask
		// again now that it is.
		refresh(z.origin)
		waitServed(t, ns1, z.origin, 1, z.addr)
	}

	// A change at the primary arrives.
	writeZone(t, confZone, "conf.test.", 2, "192.0.2.22")
	if out, err := exec.Command(knotc, "-s", filepath.Join(dir, "knot", "run", "knot.sock"), "zone-reload", "conf.test.").CombinedOutput(); err != nil {
		t.Fatalf("knotc zone-reload: %v\n%s", err, out)
	}
	ns.waitSerial(t, "127.0.0.1:53", "conf.test.", 2)
	refresh("conf.test.")
	waitServed(t, ns1, "conf.test.", 2, "192.0.2.22")

	// The transfer state names the primary as configured, and its serial.
	code, body = call(t, opc, "GET", apiURL(ns1, "/api/v1/secondary/zones/conf.test."), nil)
	z := decode[api.SecondaryZone](t, body)
	if code != 200 || len(z.Primaries) != 1 || z.Primaries[0] != "primary:53" || z.Serial != 2 || z.LastError != "" {
		t.Fatalf("secondary zone status: %d %+v", code, z)
	}
}

// writeZone writes a small zone with serial and the address of www.
func writeZone(t *testing.T, path, origin string, serial uint32, addr string) {
	t.Helper()
	text := fmt.Sprintf("$ORIGIN %s\n$TTL 60\n@ SOA ns1 hostmaster %d 60 10 600 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A %s\n", origin, serial, addr)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitServed waits until the node answers origin with serial and www
// with addr.
func waitServed(t *testing.T, rn *runningNode, origin string, serial uint32, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		soa := query(t, rn.dnsAddr, origin, dns.TypeSOA, false)
		www := query(t, rn.dnsAddr, "www."+origin, dns.TypeA, false)
		if len(soa.Answer) == 1 && soa.Answer[0].(*dns.SOA).Serial == serial && len(www.Answer) == 1 && www.Answer[0].(*dns.A).A.String() == addr {
			return
		}
		last = fmt.Sprintf("SOA %v, www %v", soa.Answer, www.Answer)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s serial %d (www %s) not served within 60 s; last: %s", rn.name, origin, serial, addr, last)
}

// testNetns is a network namespace of the test's own, with only its
// loopback up.
type testNetns struct {
	name string
	h    netns.NsHandle
}

func newNetns(t *testing.T) *testNetns {
	t.Helper()
	testenv.RequireTool(t, "ip")
	name := fmt.Sprintf("ss-primary-%d", os.Getpid())
	exec.Command("ip", "netns", "del", name).Run() // left over by a killed run
	for _, args := range [][]string{{"netns", "add", name}, {"-n", name, "link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &testNetns{name: name, h: h}
}

// dial connects to addr from inside the namespace: the socket is made
// there (on a thread switched into it for the call); it stays there.
func (n *testNetns) dial(network, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	if err := netns.Set(n.h); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if serr := netns.Set(orig); serr != nil {
		// The thread stays in the namespace: let it die with this
		// goroutine rather than serve another (no UnlockOSThread).
		return c, err
	}
	runtime.UnlockOSThread()
	return c, err
}

// soa asks addr in the namespace for origin's SOA serial.
func (n *testNetns) soa(addr, origin string) (uint32, error) {
	c, err := n.dial("udp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	co := &dns.Conn{Conn: c}
	m := new(dns.Msg)
	m.SetQuestion(origin, dns.TypeSOA)
	if err := co.WriteMsg(m); err != nil {
		return 0, err
	}
	r, err := co.ReadMsg()
	if err != nil {
		return 0, err
	}
	if len(r.Answer) != 1 {
		return 0, fmt.Errorf("rcode %s, answer %v", dns.RcodeToString[r.Rcode], r.Answer)
	}
	soa, ok := r.Answer[0].(*dns.SOA)
	if !ok {
		return 0, errors.New("not a SOA")
	}
	return soa.Serial, nil
}

// waitServing waits until the server at addr in the namespace serves
// every origin.
func (n *testNetns) waitServing(t *testing.T, p *refserver.Proc, addr string, origins ...string) {
	t.Helper()
	for _, o := range origins {
		deadline := time.Now().Add(refserver.ServeTimeout)
		for {
			_, err := n.soa(addr, o)
			if err == nil {
				break
			}
			if p.Exited() || time.Now().After(deadline) {
				t.Fatalf("%s does not serve %s in its namespace: %v\n%s", p.Name, o, err, p.Tail(40))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// waitSerial waits until the server at addr in the namespace serves
// origin with serial.
func (n *testNetns) waitSerial(t *testing.T, addr, origin string, serial uint32) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := n.soa(addr, origin)
		if err == nil && got == serial {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in the namespace: serial %d (%v), want %d", origin, got, err, serial)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// forwardDNS makes tn (a tailnet member) forward DNS on its tailnet
// addresses, TCP and UDP port 53, to 127.0.0.1:53 in ns.
func forwardDNS(t *testing.T, tn *overlay.Tailnet, ns *testNetns) {
	t.Helper()
	const target = "127.0.0.1:53"
	ln, err := tn.Listen("tcp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go nslab.PipeTCP(ln, func() (net.Conn, error) { return ns.dial("tcp", target) })
	v4, v6 := tn.Addrs()
	for _, a := range []string{v4.String(), v6.String()} {
		pc, err := tn.ListenPacket("udp", net.JoinHostPort(a, "53"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 65535)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				q := append([]byte(nil), buf[:n]...)
				go func() {
					up, err := ns.dial("udp", target)
					if err != nil {
						return
					}
					defer up.Close()
					up.SetDeadline(time.Now().Add(3 * time.Second))
					if _, err := up.Write(q); err != nil {
						return
					}
					resp := make([]byte, 65535)
					m, err := up.Read(resp)
					if err != nil {
						return
					}
					pc.WriteTo(resp[:m], from)
				}()
			}
		}()
	}
}
