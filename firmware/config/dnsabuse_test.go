package config

import (
	"strings"
	"testing"
	"time"
)

func TestDNSAbuseDefaults(t *testing.T) {
	c, err := Parse([]byte("node:\n  name: n1\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := c.DNS.DNSAbuse
	if !a.CookiesOn() || a.RequireCookieUDP || len(a.CookieSecrets) != 0 || a.TCPMaxConnsPerClient != 16 {
		t.Errorf("cookie defaults: %+v", a)
	}
	r := a.RRL
	if r.Enabled || r.ResponsesPerSecond != 20 || time.Duration(r.Window) != 15*time.Second || *r.Slip != 2 ||
		r.IPv4Prefix != 24 || r.IPv6Prefix != 56 || r.TableSize != 65536 {
		t.Errorf("rrl defaults: %+v", r)
	}
}

func TestDNSAbuseParse(t *testing.T) {
	doc := `dns:
  cookies: true
  cookie_secrets: [e5e973e5a6b2a43f48e7dc849e37bfcf, dd3bdf9344b678b185a6f5cb60fca715]
  require_cookie_udp: true
  tcp_max_conns_per_client: 4
  rrl:
    enabled: true
    responses_per_second: 5
    nxdomains_per_second: 2
    window: 5s
    slip: 0
    ipv6_prefix: 48
    exempt: [192.0.2.0/24, "2001:db8::/32"]
`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	a := c.DNS.DNSAbuse
	if len(a.Secrets()) != 2 || a.Secrets()[0][0] != 0xe5 || !a.RequireCookieUDP || a.TCPMaxConnsPerClient != 4 {
		t.Errorf("%+v", a)
	}
	r := a.RRL
	if !r.Enabled || r.ResponsesPerSecond != 5 || r.NXDomainsPerSecond != 2 || *r.Slip != 0 || r.IPv6Prefix != 48 || r.IPv4Prefix != 24 || len(r.Exempt) != 2 {
		t.Errorf("%+v", r)
	}
	// Saved and read back alike.
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if *c2.DNS.RRL.Slip != 0 || len(c2.DNS.CookieSecrets) != 2 {
		t.Errorf("round trip: %+v", c2.DNS.DNSAbuse)
	}
	for _, bad := range []string{
		"dns:\n  cookie_secrets: [abcd]\n",
		"dns:\n  rrl:\n    slip: 11\n",
		"dns:\n  rrl:\n    ipv4_prefix: 33\n",
		"dns:\n  rrl:\n    window: 2h\n",
		"dns:\n  rrl:\n    bogus: 1\n",
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		} else if !strings.Contains(err.Error(), "line") {
			t.Errorf("%q: error without a line: %v", bad, err)
		}
	}
}
