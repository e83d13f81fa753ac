package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestTenantsSection: defaults, and bad tenants refused with their name
// and line.
func TestTenantsSection(t *testing.T) {
	c, err := Parse([]byte(`data_dir: /d
tenants:
  list:
    - name: de
      prefixes: [192.0.2.0/24]
      addresses: [192.0.2.53]
`))
	if err != nil {
		t.Fatal(err)
	}
	tc := c.Tenants
	if tc.Dir != "/d/tenants" || tc.UIDBase != DefaultTenantUIDBase || tc.Cgroup != DefaultTenantCgroup || tc.Port != 53 || tc.RestartDelay != DefaultTenantRestartDelay || tc.List[0].Pids != DefaultTenantPids {
		t.Errorf("defaults: %+v", tc)
	}
	for doc, want := range map[string]string{
		"tenants:\n  list:\n    - name: De\n      prefixes: [192.0.2.0/24]\n      addresses: [192.0.2.53]\n":                                                            `line 2: tenants.list: tenant name "De"`,
		"tenants:\n  list:\n    - name: de\n      prefixes: [192.0.2.1/24]\n      addresses: [192.0.2.53]\n":                                                            "has host bits set",
		"tenants:\n  list:\n    - name: de\n      prefixes: [192.0.2.0/24]\n      addresses: [198.51.100.1]\n":                                                          "address 198.51.100.1 is in none of its prefixes",
		"tenants:\n  list:\n    - {name: a, prefixes: [192.0.2.0/24], addresses: [192.0.2.1]}\n    - {name: b, prefixes: [192.0.2.128/25], addresses: [192.0.2.129]}\n": "overlaps tenant a's",
		"tenants:\n  list:\n    - {name: a, prefixes: [192.0.2.0/24], addresses: [192.0.2.1], memory_mb: 8}\n":                                                          "memory_mb 8",
		"tenants:\n  list:\n    - {name: a, prefixes: [192.0.2.0/24], addresses: [192.0.2.1], cpuset: \"x\"}\n":                                                         `cpuset "x"`,
		"tenants:\n  restart_delay: 0s\n  list:\n    - {name: a, prefixes: [192.0.2.0/24], addresses: [192.0.2.1], canary: \"a. NOPE\"}\n":                              "unknown type NOPE",
		"tenants:\n  uid_base: 10\n": "uid_base 10",
		"tenants:\n  list:\n    - {name: a, prefixes: [192.0.2.0/24], addresses: [192.0.2.1], dns: {rrl: {enabled: true, slip: 20}}}\n":          "tenant a: dns.rrl.slip 20: must be 0..10",
		"tenants:\n  list:\n    - {name: a, prefixes: [192.0.2.0/24], addresses: [192.0.2.1], dns: {cookie_secrets: [abc]}}\n":                   `tenant a: dns.cookie_secrets: "abc" is not 32 hex digits`,
		"tenants:\n  list:\n    - {name: a, prefixes: [192.0.2.0/24], addresses: [192.0.2.1], dns: {rrl: {responses_per_second: 5, nope: 1}}}\n": "nope",
	} {
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", doc, err, want)
		}
	}
	// A tenant's own dns settings get the dns section's defaults.
	c, err = Parse([]byte("tenants:\n  list:\n    - {name: a, prefixes: [192.0.2.0/24], addresses: [192.0.2.1], dns: {rrl: {enabled: true, responses_per_second: 5}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Tenants.List[0].DNS; d == nil || !d.RRL.Enabled || d.RRL.ResponsesPerSecond != 5 || *d.RRL.Slip != DefaultRRLSlip || d.TCPMaxConnsPerClient != DefaultTCPMaxConnsPerClient {
		t.Errorf("tenant dns: %+v", d)
	}
	c, err = Parse([]byte("tenants:\n  restart_delay: 0s\n"))
	if err != nil || c.Tenants.RestartDelay != 0 {
		t.Errorf("restart_delay 0 kept: %v %v", err, c.Tenants.RestartDelay)
	}
}

// TestTenantSecondary: a tenant's secondary section (the config-file
// equivalent of tenant add -primary/-secondary/-catalog/-tsig), its
// defaults, its problems named with the tenant, and per-tenant grants.
func TestTenantSecondary(t *testing.T) {
	c, err := Parse([]byte(`data_dir: /d
overlay:
  access:
    tenants: {de: [alice@example.net, "tag:de-ops"]}
tenants:
  list:
    - name: de
      prefixes: [192.0.2.0/24]
      addresses: [192.0.2.53]
      secondary:
        keys: [{name: xfr, algorithm: hmac-sha256, secret: c2VjcmV0}]
        zones: [{origin: de., primaries: ["198.51.100.1@xfr"]}]
        catalogs: [{origin: cat.de., primaries: [{address: "198.51.100.1:5300", key: xfr, source: 192.0.2.53}]}]
      dnstap: {target: "192.0.2.9:6000"}
`))
	if err != nil {
		t.Fatal(err)
	}
	de := c.Tenants.List[0]
	if s := de.Secondary; s == nil || len(s.Zones) != 1 || s.Zones[0].Primaries[0].Key != "xfr" || s.Catalogs[0].Primaries[0].Address.Port != 5300 || s.Limits.MaxRecords != DefaultMaxRecords || s.Timers.RefreshMin != Duration(DefaultRefreshMin) {
		t.Errorf("secondary: %+v", de.Secondary)
	}
	if got := de.SecondaryOrigins(); len(got) != 1 || got[0] != "de." {
		t.Errorf("origins %v", got)
	}
	// What it may connect to (through its host, in a network namespace
	// of its own).
	if got, want := fmt.Sprint(de.Dials()), "[tcp 198.51.100.1:53 udp 198.51.100.1:53 tcp 198.51.100.1:5300 from 192.0.2.53 udp 198.51.100.1:5300 from 192.0.2.53 tcp 192.0.2.9:6000]"; got != want {
		t.Errorf("dials:\n got %s\nwant %s", got, want)
	}
	if r := de.Redacted(); r.Secondary.Keys[0].Secret == "c2VjcmV0" || de.Secondary.Keys[0].Secret != "c2VjcmV0" {
		t.Errorf("redacted %+v, original %+v", r.Secondary.Keys, de.Secondary.Keys)
	}
	if got := c.Overlay.Access.Tenants["de"]; len(got) != 2 {
		t.Errorf("access.tenants: %v", c.Overlay.Access.Tenants)
	}
	base := "tenants:\n  list:\n    - {name: a, prefixes: [192.0.2.0/24], addresses: [192.0.2.1], secondary: "
	for doc, want := range map[string]string{
		base + "{zones: [{origin: a., primaries: [\"198.51.100.1@k\"]}]}}\n":                                                             `tenant a: secondary: zone a.: key "k" is not defined`,
		base + "{keys: [{name: k, algorithm: hmac-sha256, secret: \"no!\"}], zones: [{origin: a., primaries: [\"198.51.100.1@k\"]}]}}\n": "key k: secret is not base64",
		base + "{zones: [{origin: a., primaries: [primary.example.ts.net]}]}}\n":                                                         "a tenant's primaries are IP addresses",
		base + "{zones: [{origin: a.}]}}\n":                                                                                              "needs primaries or a template",
		base + "{outbound: {notify: [\"198.51.100.9\"]}}}\n":                                                                             "do not apply to a tenant",
		"overlay:\n  access:\n    tenants: {de: [\"*\"]}\n":                                                                              `access.tenants.de: entry "*"`,
	} {
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", doc, err, want)
		}
	}
	// In a network namespace of its own, it transfers and sends dnstap
	// through its host.
	if _, err := Parse([]byte(base + "{zones: [{origin: a., primaries: [\"198.51.100.1\"]}]}, dnstap: {target: \"192.0.2.9:6000\"}, network_namespace: true}\n")); err != nil {
		t.Errorf("network_namespace with secondary and dnstap: %v", err)
	}
}

func TestHostCpuset(t *testing.T) {
	c, err := Parse([]byte("tenants:\n  host_cpuset: \"0,2-3\"\n"))
	if err != nil || c.Tenants.HostCpuset != "0,2-3" {
		t.Fatalf("got %+v, %v", c.Tenants, err)
	}
	for _, bad := range []string{"1-", "a", "0;1", " 0"} {
		_, err := Parse([]byte("tenants:\n  host_cpuset: \"" + bad + "\"\n"))
		if err == nil || !strings.Contains(err.Error(), "line 2: tenants.host_cpuset") {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}
