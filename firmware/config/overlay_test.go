package config

import (
	"strings"
	"testing"
)

func TestOverlayDefaults(t *testing.T) {
	c, err := Parse([]byte("node:\n  name: ams1.example.net\noverlay:\n  enabled: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Overlay
	if o.Hostname != "ams1" || o.HTTPPort != 80 || o.Port != 41641 || !o.DNSOnTailnet() || !o.MetricsOn() ||
		len(o.Access.Read) != 1 || o.Access.Read[0] != "*" || len(o.Access.Admin) != 0 || o.Dnstap.Target != "" || len(o.Identity.Listen) != 0 {
		t.Fatalf("defaults: %+v", o)
	}
	if o.StateDirIn("/perm/shoestring") != "/perm/shoestring/tailnet" || o.AuthKeyFileIn("/perm/x") != "/perm/x/tailnet.authkey" {
		t.Fatalf("paths: %s %s", o.StateDirIn("/perm/shoestring"), o.AuthKeyFileIn("/perm/x"))
	}
	// What was saved as the last good config reads back the same.
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if c2.Overlay.Hostname != o.Hostname || c2.Overlay.Port != o.Port || !c2.Overlay.Enabled {
		t.Fatalf("round trip: %+v", c2.Overlay)
	}
}

func TestOverlayChecks(t *testing.T) {
	for _, x := range []struct{ doc, want string }{
		{"management:\n  listen: 0.0.0.0:8053\n", "line 2: management.listen \"0.0.0.0:8053\": must be a loopback address"},
		{"management:\n  listen: \"192.0.2.1:8053\"\n", "must be a loopback address"},
		{"overlay:\n  control_url: headscale.example\n", "line 2: overlay: control_url"},
		{"overlay:\n  auth_key: a\n  auth_key_file: /b\n", "not both"},
		{"overlay:\n  hostname: ams_1\n", "want one DNS label"},
		{"overlay:\n  tags: [ops]\n", "tags look like tag:NAME"},
		{"overlay:\n  port: 53\n", "not DNS's or BGP's"},
		{"overlay:\n  access:\n    admin: [\"alice smith\"]\n", "want a login name, tag:NAME or *"},
		{"overlay:\n  dnstap:\n    target: collector\n", "dnstap.target \"collector\": want host:port"},
		{"overlay:\n  identity:\n    listen: [\"192.0.2.53:53\"]\n", "belongs to DNS or BGP"},
		{"overlay:\n  unknown: 1\n", "field unknown not found"},
	} {
		_, err := Parse([]byte(x.doc))
		if err == nil || !strings.Contains(err.Error(), x.want) {
			t.Errorf("%q: %v, want %q", x.doc, err, x.want)
		}
	}
	for _, ok := range []string{
		"management:\n  listen: 127.0.0.1:8053\n",
		"management:\n  listen: \"[::1]:8053\"\n",
		"overlay:\n  enabled: true\n  control_url: https://hs.example.net\n  auth_key_file: /perm/key\n  tags: [tag:dns]\n  access:\n    admin: [alice@example.net, tag:ops]\n    read: [\"*\"]\n  dnstap:\n    target: collector:6000\n  identity:\n    listen: [\"192.0.2.53:80\"]\n",
	} {
		if _, err := Parse([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}
