package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte("node:\n  name: ams1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != DefaultDataDir || len(c.DNS.Listen) != 1 || c.DNS.Listen[0] != DefaultDNSListen ||
		c.DNS.NSID != "ams1" || c.DNS.MaxUDPSize != DefaultMaxUDPSize ||
		time.Duration(c.DNS.TCPIdleTimeout) != DefaultTCPIdleTimeout || c.Management.Listen != DefaultManagement {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

// TestStrictErrorsNameTheLine: an operator fixing a config on a box far
// away needs the line of every mistake, and nothing of a bad document may
// be applied.
func TestStrictErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want []string
	}{
		{"node:\n  name: a\n  colour: blue\n", []string{"line 3", "colour"}},
		{"dns:\n  listen: [\"192.0.2.1\"]\n", []string{"line 2", "not host:port"}},
		{"dns:\n  listen: [\"example.com:53\"]\n", []string{"line 2", "IP address"}},
		{"dns:\n  tcp_idle_timeout: soon\n", []string{"line 2", "duration"}},
		{"dns:\n  max_udp_size: 100\n", []string{"line 2", "512..65535"}},
		{"zones:\n  - origin: example.com\n    file: a\n  - origin: Example.COM.\n    file: b\n", []string{"listed twice"}},
		{"zones:\n  - origin: example.com\n", []string{"line 2", "file is required"}},
		{"dns: [1, 2]\n", []string{"line 1"}},
		{"", []string{"empty"}},
		{"node: {}\n---\nnode: {}\n", []string{"one document"}},
	} {
		_, err := Parse([]byte(c.doc))
		if err == nil {
			t.Errorf("%q: accepted", c.doc)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", c.doc, err, w)
			}
		}
	}
}

// TestMarshalRoundTrip: the last good config is stored as YAML and must
// parse back to the same document.
func TestMarshalRoundTrip(t *testing.T) {
	c, err := Parse([]byte("node:\n  name: a\ndns:\n  listen: [\"127.0.0.1:53\", \"[::1]:53\"]\n  tcp_idle_timeout: 3s\nzones:\n  - origin: example.com.\n    file: /z\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(b)
	if err != nil {
		t.Fatalf("stored config does not parse back: %v\n%s", err, b)
	}
	b2, _ := c2.Marshal()
	if string(b) != string(b2) {
		t.Fatalf("round trip changed the document:\n%s\n---\n%s", b, b2)
	}
}

// TestRelativeDataDirRoundTrip: a config built in code with a relative
// data_dir (what `shoestring dev`, and so `make run`, does), filled with
// defaults and marshalled, parses back: PUT /api/v1/config and the
// last good config go through that document. A default derived from a
// relative data_dir (tenants.dir) once made it unparseable.
func TestRelativeDataDirRoundTrip(t *testing.T) {
	c := &Config{DataDir: "var/dev"}
	c.DNS.Listen = []HostPort{"127.0.0.1:5300"}
	c.SetDefaults()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b); err != nil {
		t.Fatalf("a defaulted config with a relative data_dir does not parse back: %v\n%s", err, b)
	}
}
