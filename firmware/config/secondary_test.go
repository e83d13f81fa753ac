package config

import (
	"strings"
	"testing"
	"time"
)

// secondaryDoc uses every option of the secondary section.
const secondaryDoc = `secondary:
  keys:
    - name: xfr-key
      algorithm: hmac-sha256
      secret: "2nPUDtGRFhz9kVWP/0oXUrWEqNcmn0Q59Z0vd+m0sJ8="
  templates:
    - name: hidden
      primaries: ["192.0.2.10@xfr-key", "[2001:db8::10]:5353"]
  zones:
    - origin: example.com
      primaries:
        - address: 192.0.2.10
          key: xfr-key
          source: 192.0.2.53
    - origin: example.net
      template: hidden
  catalogs:
    - origin: catalog.example.
      template: hidden
      member_template: hidden
      groups:
        eu: hidden
  limits:
    max_records: 1000
    max_bytes: 1000000
    timeout: 1m
    idle_timeout: 5s
    concurrent: 2
    memory_target: -1
  timers:
    refresh_min: 1s
    refresh_max: 1h
    retry_min: 1s
    retry_max: 10m
    expire_min: 5s
  outbound:
    allow:
      - from: [10.0.0.0/8, "2001:db8::/32", 127.0.0.1]
      - key: xfr-key
    notify: ["10.1.2.3@xfr-key", {address: "10.1.2.4:5300", source: 10.1.2.1}]
    catalog: own.catalog.example.
    concurrent: 1
`

func TestSecondaryDocument(t *testing.T) {
	c, err := Parse([]byte(secondaryDoc))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Secondary
	if len(s.Zones) != 2 || s.Zones[0].Primaries[0].Key != "xfr-key" || s.Zones[0].Primaries[0].Source.String() != "192.0.2.53" {
		t.Errorf("zones: %+v", s.Zones)
	}
	if p := s.Templates[0].Primaries; p[0].Address.String() != "192.0.2.10:53" || p[0].Key != "xfr-key" || p[1].Address.String() != "[2001:db8::10]:5353" {
		t.Errorf("short form primaries: %+v", p)
	}
	if s.Limits.MemoryTarget != -1 || time.Duration(s.Timers.ExpireMin) != 5*time.Second || s.Outbound.Notify[1].Source.String() != "10.1.2.1" {
		t.Errorf("limits/timers/notify: %+v %+v %+v", s.Limits, s.Timers, s.Outbound.Notify)
	}
	// What is written back (the last good config) reads the same.
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b); err != nil {
		t.Fatalf("marshalled config does not parse: %v\n%s", err, b)
	}
}

func TestSecondaryDefaults(t *testing.T) {
	c, err := Parse([]byte("node:\n  name: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Secondary.Limits
	if l.MaxRecords != DefaultMaxRecords || l.MaxBytes != DefaultMaxBytes || l.Concurrent != DefaultTransfersAtOnce || l.MemoryTarget != DefaultMemoryTarget {
		t.Errorf("limits defaults: %+v", l)
	}
	if time.Duration(c.Secondary.Timers.RefreshMin) != DefaultRefreshMin || time.Duration(c.Secondary.Timers.RetryMax) != DefaultRetryMax {
		t.Errorf("timer defaults: %+v", c.Secondary.Timers)
	}
}

// Each mistake is an error naming its line.
func TestSecondaryErrors(t *testing.T) {
	cases := []struct{ doc, want string }{
		{"secondary:\n  zones:\n    - origin: a.test\n      primaries: [\"192.0.2.1@nokey\"]\n", `line 4: secondary: zone a.test: key "nokey" is not defined`},
		{"secondary:\n  zones:\n    - origin: a.test\n      primaries: [\"not_a_name\"]\n", "line 4:"},
		{"secondary:\n  zones:\n    - origin: a.test\n      primaries: [\"192.0.2\"]\n", "line 4:"},
		{"secondary:\n  zones:\n    - origin: a.test\n      primaries:\n        - address: \"primary:0\"\n", "line 5:"},
		{"secondary:\n  zones:\n    - origin: a.test\n", "needs primaries or a template"},
		{"secondary:\n  zones:\n    - origin: a.test\n      template: nope\n", `template "nope" is not defined`},
		{"secondary:\n  keys:\n    - name: k\n      algorithm: hmac-md5\n      secret: YQ==\n", "algorithm \"hmac-md5\""},
		{"secondary:\n  keys:\n    - name: k\n      algorithm: hmac-sha256\n      secret: \"not base64!\"\n", "not base64"},
		{"zones:\n  - origin: a.test\n    file: a.zone\nsecondary:\n  zones:\n    - origin: A.test.\n      primaries: [192.0.2.1]\n", "listed twice"},
		{"secondary:\n  outbound:\n    allow:\n      - from: [10.0.0.300]\n", "not an address or prefix"},
		{"secondary:\n  outbound:\n    allow:\n      - {}\n", "a rule needs from, key or both"},
		{"secondary:\n  catalogs:\n    - origin: c.test\n      primaries: [192.0.2.1]\n      groups:\n        eu: missing\n", `group "eu" maps to template "missing"`},
		{"secondary:\n  zones:\n    - origin: a.test\n      primaries: [192.0.2.1]\n      typo: 1\n", "field typo not found"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.doc, err, c.want)
		}
	}
}

// A primary is an address or a (tailnet) name, with a port or 53.
func TestParseEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                     "192.0.2.1:53",
		"192.0.2.1:5300":                "192.0.2.1:5300",
		"2001:db8::1":                   "[2001:db8::1]:53",
		"[2001:db8::1]":                 "[2001:db8::1]:53",
		"[2001:db8::1]:5300":            "[2001:db8::1]:5300",
		"::ffff:192.0.2.1":              "192.0.2.1:53",
		"primary":                       "primary:53",
		"Primary.Tail-Net.ts.net.:5300": "primary.tail-net.ts.net:5300",
	} {
		e, err := ParseEndpoint(in)
		if err != nil || e.String() != want {
			t.Errorf("%q: got %v %v, want %s", in, e, err, want)
		}
		if isName := strings.HasPrefix(strings.ToLower(in), "p"); isName != (e.Host != "") || isName == e.AddrPort().IsValid() {
			t.Errorf("%q: host %q addr %v", in, e.Host, e.AddrPort())
		}
	}
	for _, bad := range []string{"", "192.0.2", "10.0.0.300", "primary:0", "primary:x", "a_b", "-a", "a..b", "192.0.2.1:70000"} {
		if e, err := ParseEndpoint(bad); err == nil {
			t.Errorf("%q accepted as %v", bad, e)
		}
	}
	r, err := ParseRemote("primary:5300@xfr-key")
	if err != nil || r.Address.Host != "primary" || r.Address.Port != 5300 || r.Key != "xfr-key" {
		t.Errorf("ParseRemote: %+v %v", r, err)
	}
}

func TestParseTSIGKeyFlag(t *testing.T) {
	k, err := ParseTSIGKey("k=hmac-sha512:YWJj")
	if err != nil || k.Name != "k" || k.Algorithm != "hmac-sha512" || k.Secret != "YWJj" {
		t.Fatalf("%+v %v", k, err)
	}
	for _, bad := range []string{"k", "k=hmac-sha256", "=hmac-sha256:YWJj", "k=sha1:YWJj"} {
		if _, err := ParseTSIGKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
