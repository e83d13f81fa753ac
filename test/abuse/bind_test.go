package abuse

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// TestCookieBINDForwarder: a BIND resolver forwarding to us learns our
// server cookie and sends it back with its next queries.
func TestCookieBINDForwarder(t *testing.T) {
	secret, _ := dnsserver.ParseCookieSecret("e5e973e5a6b2a43f48e7dc849e37bfcf")
	s, addr := startServer(t, dnsserver.Config{CookieSecrets: []dnsserver.CookieSecret{secret}})
	_, ourPort, _ := strings.Cut(addr, ":")
	// A resolver serves no zone of its own: it is ready once it
	// forwards (the loop below), not when it answers a SOA.
	bind := refserver.StartBIND(t, refserver.BINDConfig{Forward: "127.0.0.1:" + ourPort})
	resolver := bind.Addr
	c := &dns.Client{Timeout: 2 * time.Second}
	ask := func(name string) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, _, err := c.Exchange(m, resolver)
		return r, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := ask("ready.wild.example.com.")
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("BIND forwarding to us does not answer: %v %v", err, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Names not cached yet: each is forwarded to us.
	for i := 0; i < 5; i++ {
		if r, err := ask(fmt.Sprintf("n%d.wild.example.com.", i)); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Fatalf("query %d through BIND: %v %v", i, err, r)
		}
	}
	m := s.QueryMetrics().Cookies
	t.Logf("queries BIND forwarded to us, by cookie state: %v", m)
	if m["valid"] < 5 || m["invalid"] != 0 || m["badcookie"] != 0 {
		t.Fatalf("BIND did not keep and send back our cookie: %v", m)
	}
}
