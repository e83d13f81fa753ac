package config

import (
	"strings"
	"testing"
	"time"
)

func TestSystemDefaults(t *testing.T) {
	c, err := Parse([]byte("node:\n  name: ams1\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.System
	if s.Hostname != "ams1" {
		t.Errorf("hostname %q, want node.name", s.Hostname)
	}
	if s.Watchdog.Timeout != DefaultWatchdogTimeout || s.Watchdog.BootGrace != DefaultWatchdogBootGrace {
		t.Errorf("watchdog %+v", s.Watchdog)
	}
	if len(s.NTP.Servers) == 0 || len(s.Resolvers) == 0 || s.Logs.Kernel == nil || !*s.Logs.Kernel {
		t.Errorf("defaults missing: %+v", s)
	}
	// The last good config is stored marshalled; it must parse back.
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b); err != nil {
		t.Fatalf("marshalled config does not parse: %v\n%s", err, b)
	}
}

func TestSystemParse(t *testing.T) {
	c, err := Parse([]byte(`system:
  hostname: box-1.example
  watchdog: {device: off, timeout: 1m}
  ntp: {servers: ["192.0.2.123", "ntp.example:1123"], interval: 1h}
  resolvers: ["192.0.2.53:53"]
  logs: {ring_kib: 128, file_kib: 256, flush_interval: 10s, write_kib_per_hour: 100, kernel: false}
  shutdown_timeout: 30s
`))
	if err != nil {
		t.Fatal(err)
	}
	s := c.System
	if s.Hostname != "box-1.example" || s.Watchdog.Device != "off" || time.Duration(s.Watchdog.Timeout) != time.Minute ||
		len(s.NTP.Servers) != 2 || s.Logs.RingKiB != 128 || *s.Logs.Kernel || time.Duration(s.ShutdownTimeout) != 30*time.Second {
		t.Errorf("parsed %+v", s)
	}
}

func TestSystemErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"system:\n  hostname: -bad\n", "line 2: system: hostname"},
		{"system:\n  watchdog:\n    timeout: 1s\n", "line 3: system: watchdog.timeout"},
		{"system:\n  watchdog:\n    device: watchdog0\n", "watchdog.device"},
		{"system:\n  ntp:\n    servers: [\"bad name!\"]\n", "ntp server"},
		{"system:\n  ntp:\n    servers: [\"192.0.2.1:99999\"]\n", "bad port"},
		{"system:\n  logs:\n    ring_kib: 1\n", "logs.ring_kib"},
		{"system:\n  resolvers: [\"nope\"]\n", "not host:port"},
		{"system:\n  shutdown_timeout: 1s\n", "shutdown_timeout"},
		{"system:\n  watchdog:\n    fed: always\n", "field fed not found"},
	} {
		_, err := Parse([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.doc, err, c.want)
		}
	}
}
