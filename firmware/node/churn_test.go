package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
)

func zoneText(origin string, serial uint32, addr string) string {
	return fmt.Sprintf(`$ORIGIN %s
$TTL 300
@ IN SOA ns1 hostmaster %d 3600 900 1209600 60
@ IN NS ns1
ns1 IN A 192.0.2.53
www IN A %s
*.wild IN A %s
version IN TXT "%d"
`, origin, serial, addr, addr, serial)
}

// startNode runs a node on loopback ports chosen by the kernel and returns
// its DNS and API addresses.
func startNode(t *testing.T, dir string) (dnsAddr, httpAddr string, stop func()) {
	t.Helper()
	cfg := &config.Config{DataDir: dir}
	cfg.DNS.Listen = []config.HostPort{"127.0.0.1:0"}
	cfg.Management.Listen = "127.0.0.1:0"
	cfg.Node.Name = "churn"
	cfg.SetDefaults()
	ready := make(chan struct{})
	n := New(Options{
		Config: cfg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnReady: func(d []string, h string) {
			dnsAddr, httpAddr = d[0], h
			close(ready)
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("node exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("node not ready after 10s")
	}
	return dnsAddr, httpAddr, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node: %v", err)
		}
	}
}

// TestZoneChurnUnderLoad adds, replaces and deletes zones through the API
// while clients query without pause. Every answer must be one the zone
// had at some moment: the stable zone's exactly, a replaced zone's from
// the old or the new version, a deleted zone's or REFUSED — never a
// timeout, SERVFAIL or a mixed answer. And the new versions must be what
// is served: each version of the churned zone carries its number (a TXT
// record, and its serial), each client sees the numbers only move
// forward and never ahead of what was uploaded, the clients see many
// versions go by, and the last one uploaded is live at the end.
func TestZoneChurnUnderLoad(t *testing.T) {
	dnsAddr, httpAddr, stop := startNode(t, t.TempDir())
	defer stop()
	c := api.NewClient(httpAddr)
	if _, err := c.PutZone("stable.test.", []byte(zoneText("stable.test.", 1, "192.0.2.1"))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutZone("churn.test.", []byte(zoneText("churn.test.", 1, "192.0.2.100"))); err != nil {
		t.Fatal(err)
	}

	var (
		queries, bad atomic.Int64
		mu           sync.Mutex
		failures     []string
		// uploading is the newest version whose upload has started: no
		// client may see a newer one. seen counts the versions clients
		// saw.
		uploading atomic.Uint32
		seen      = map[uint32]bool{}
	)
	uploading.Store(1)
	fail := func(s string) {
		bad.Add(1)
		mu.Lock()
		if len(failures) < 10 {
			failures = append(failures, s)
		}
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cl := &dns.Client{Timeout: time.Second}
			names := []string{"www.stable.test.", "x.wild.stable.test.", "www.churn.test.", "version.churn.test.", "y.wild.churn.test.", "www.gone.test.", "version.churn.test."}
			var last uint32 // the newest version this client saw
			for i := 0; ctx.Err() == nil; i++ {
				name := names[(i+w)%len(names)]
				m := new(dns.Msg)
				if name == "version.churn.test." {
					m.SetQuestion(name, dns.TypeTXT)
					r, _, err := cl.Exchange(m, dnsAddr)
					ceiling := uploading.Load() // read after the answer came
					queries.Add(1)
					if err != nil {
						fail(fmt.Sprintf("%s: %v", name, err))
						continue
					}
					v, ok := txtVersion(r)
					switch {
					case !ok:
						fail(fmt.Sprintf("version: rcode %d answer %v", r.Rcode, r.Answer))
					case v < last:
						fail(fmt.Sprintf("version went back from %d to %d", last, v))
					case v > ceiling:
						fail(fmt.Sprintf("version %d served before it was uploaded (uploading %d)", v, ceiling))
					default:
						if v > last {
							last = v
							mu.Lock()
							seen[v] = true
							mu.Unlock()
						}
					}
					continue
				}
				m.SetQuestion(name, dns.TypeA)
				r, _, err := cl.Exchange(m, dnsAddr)
				queries.Add(1)
				if err != nil {
					fail(fmt.Sprintf("%s: %v", name, err))
					continue
				}
				var got string
				if len(r.Answer) == 1 {
					if a, ok := r.Answer[0].(*dns.A); ok {
						got = a.A.String()
					}
				}
				switch {
				case strings.HasSuffix(name, "stable.test."):
					if r.Rcode != 0 || got != "192.0.2.1" {
						fail(fmt.Sprintf("stable %s: rcode %d answer %q", name, r.Rcode, got))
					}
				case strings.HasSuffix(name, "churn.test."):
					if r.Rcode != 0 || !strings.HasPrefix(got, "192.0.2.") || got < "192.0.2.100" {
						fail(fmt.Sprintf("churn %s: rcode %d answer %q", name, r.Rcode, got))
					}
				default: // gone.test. comes and goes
					if !(r.Rcode == dns.RcodeRefused && len(r.Answer) == 0) && !(r.Rcode == 0 && got == "192.0.2.9") {
						fail(fmt.Sprintf("gone %s: rcode %d answer %q", name, r.Rcode, got))
					}
				}
			}
		}(w)
	}
	deadline := time.Now().Add(3 * time.Second)
	changes := 0
	var final uint32
	// At least 10 versions, however slow the machine.
	for serial := uint32(2); time.Now().Before(deadline) || serial <= 10; serial++ {
		addr := fmt.Sprintf("192.0.2.%d", 100+serial%100)
		uploading.Store(serial)
		info, err := c.PutZone("churn.test.", []byte(zoneText("churn.test.", serial, addr)))
		if err != nil {
			t.Fatal(err)
		}
		if info.Serial != serial || info.ServedSerial != serial {
			t.Fatalf("upload of version %d: stored %d, served %d", serial, info.Serial, info.ServedSerial)
		}
		final = serial
		if serial%2 == 0 {
			if _, err := c.PutZone("gone.test.", []byte(zoneText("gone.test.", serial, "192.0.2.9"))); err != nil {
				t.Fatal(err)
			}
		} else if err := c.DeleteZone("gone.test."); err != nil {
			t.Fatal(err)
		}
		// Bad uploads in between must change nothing.
		if _, err := c.PutZone("stable.test.", []byte("@ IN A 192.0.2.66\n")); err == nil {
			t.Fatal("a zone without SOA was accepted")
		}
		changes += 3
	}
	// The last version is live the moment its upload returned.
	cl := &dns.Client{Timeout: time.Second}
	m := new(dns.Msg)
	m.SetQuestion("version.churn.test.", dns.TypeTXT)
	r, _, err := cl.Exchange(m, dnsAddr)
	if v, ok := txtVersion(r); err != nil || !ok || v != final {
		t.Errorf("after the last upload (version %d) the zone answers version %v (%v, %v)", final, v, r, err)
	}
	m.SetQuestion("churn.test.", dns.TypeSOA)
	if r, _, err := cl.Exchange(m, dnsAddr); err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != final {
		t.Errorf("after the last upload (serial %d) the SOA is %v (%v)", final, r, err)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	versions := len(seen)
	mu.Unlock()
	t.Logf("%d queries, %d zone changes (last version %d), %d versions seen by clients, %d bad answers", queries.Load(), changes, final, versions, bad.Load())
	if bad.Load() > 0 {
		t.Fatalf("bad answers during churn:\n%s", strings.Join(failures, "\n"))
	}
	if queries.Load() < 100 {
		t.Fatalf("only %d queries ran", queries.Load())
	}
	// The clients must have watched the zone change while they queried,
	// not just the first and the last version.
	if versions < 3 {
		t.Fatalf("%d versions uploaded, %d seen by the clients: updates not served under load", final, versions)
	}
}

// txtVersion reads the version number from a version.<zone> TXT answer.
func txtVersion(r *dns.Msg) (uint32, bool) {
	if r == nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		return 0, false
	}
	txt, ok := r.Answer[0].(*dns.TXT)
	if !ok || len(txt.Txt) != 1 {
		return 0, false
	}
	v, err := strconv.ParseUint(txt.Txt[0], 10, 32)
	return uint32(v), err == nil
}
