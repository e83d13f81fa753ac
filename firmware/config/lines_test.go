package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// edit replaces old with new in line n (1-based) of doc.
func edit(t *testing.T, doc string, n int, old, new string) string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	if !strings.Contains(lines[n-1], old) {
		t.Fatalf("line %d is %q, not containing %q", n, lines[n-1], old)
	}
	lines[n-1] = strings.Replace(lines[n-1], old, new, 1)
	return strings.Join(lines, "\n")
}

// TestErrorLines: every error names the line of the mistake, wherever it
// sits — deep in a list element, in a section whose values also appear
// elsewhere, the second of two entries listed twice.
func TestErrorLines(t *testing.T) {
	if _, err := Parse([]byte(routingDoc)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		line     int
		old, new string
		want     string
	}{
		{"bad duration in a nested list element", 37, "min_tx: 100ms", "min_tx: 100xs", "not a duration"},
		{"bad address in the second peer", 38, "2001:db8:1::1", "2001:db8:1::zz", "not an IP address"},
		{"unknown key deep in a section", 37, "multiplier: 5", "multiplier: 5, colour: red", "colour"},
		{"zero duration in a nested element", 41, "hold_time: 9s", "hold_time: 0s", "0 is not allowed"},
		{"hold time of the second peer", 41, "hold_time: 9s", "hold_time: 2s", "3s to 65535s"},
		{"peer name used twice, the second", 38, "- address: 2001:db8:1::1", "- {name: transit, address: 2001:db8:1::2, asn: 1}\n    - address: 2001:db8:1::1", "used twice"},
		{"health address outside its prefix, found in another section first", 60, "addresses: [198.51.100.53]", "addresses: [192.0.2.53]", "outside it"},
		{"health timeout longer than interval", 53, "timeout: 80ms", "timeout: 120ms", "longer than interval"},
		{"zero health interval", 52, "interval: 100ms", "interval: 0", "0 is not allowed"},
		{"drain wait zero", 61, "wait: 10s", "wait: 0s", "0 is not allowed"},
		{"canary type in a list element", 59, "type: NS", "type: BOGUS", "not a record type"},
		{"bad route in the second route", 20, "link: eth0", "link: eth7", "not in network.links"},
	} {
		doc := edit(t, routingDoc, c.line, c.old, c.new)
		_, err := Parse([]byte(doc))
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		want := fmt.Sprintf("line %d: ", c.line)
		var found bool
		for _, l := range strings.Split(err.Error(), "\n") {
			if strings.Contains(l, c.want) {
				found = true
				if !strings.HasPrefix(l, want) {
					t.Errorf("%s: %q, want it to start %q", c.name, l, want)
				}
			}
		}
		if !found {
			t.Errorf("%s: error %q lacks %q", c.name, err, c.want)
		}
	}
	for _, c := range []struct {
		doc  string
		line int
		want string
	}{
		{"zones:\n  - origin: example.com\n    file: a\n  - origin: Example.COM.\n    file: b\n", 4, "listed twice"},
		{"zones:\n  - file: a\n", 2, "origin is required"},
		{"zones:\n  - origin: example.com\n    file: a\n  - origin: example.net\n", 4, "file is required"},
		{"node:\n  name: enterprise\nhealth:\n  rise: 2000\n", 4, "1..1000"},
	} {
		_, err := Parse([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), fmt.Sprintf("line %d: ", c.line)) {
			t.Errorf("%q: %v, want line %d and %q", c.doc, err, c.line, c.want)
		}
	}
}

func TestMentions(t *testing.T) {
	for _, c := range []struct {
		line, s string
		want    bool
	}{
		{"  addresses: [192.0.2.53]", "192.0.2.5", false},
		{"  addresses: [192.0.2.53]", "192.0.2.53", true},
		{"  name: enterprise", "rise", false},
		{"  rise: 3", "rise", true},
		{"bgp:", "bgp:", true},
		{"    hold_time: 9s", "hold_time: 9s", true},
		{"  listen: [\"[::]:179\"]", "[::]:179", true},
	} {
		if got := mentions(c.line, c.s); got != c.want {
			t.Errorf("mentions(%q, %q) = %v", c.line, c.s, got)
		}
	}
}

// TestZeroTableComplete: every duration option says what 0 means.
func TestZeroTableComplete(t *testing.T) {
	var paths []string
	var walk func(tp reflect.Type, path string)
	walk = func(tp reflect.Type, path string) {
		for i := 0; i < tp.NumField(); i++ {
			f := tp.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			ft := f.Type
			for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft == reflect.TypeOf(Duration(0)):
				paths = append(paths, p)
			case ft.Kind() == reflect.Struct && ft.PkgPath() == tp.PkgPath():
				walk(ft, p)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	for _, p := range paths {
		if _, ok := durationZero[p]; !ok {
			t.Errorf("duration option %s: what 0 means is not in durationZero", p)
		}
	}
	if len(paths) != len(durationZero) {
		t.Errorf("%d duration options, %d in durationZero", len(paths), len(durationZero))
	}
}

// TestZeroDurations: an explicit 0 is refused with its reason, or kept
// (not replaced by the default), also across a save and a reload.
func TestZeroDurations(t *testing.T) {
	for p, rule := range durationZero {
		if rule.allowed {
			continue
		}
		// "-" marks a list element.
		keys := strings.Split(strings.NewReplacer("bgp.peers", "bgp.peers.-", "tenants.list", "tenants.list.-").Replace(p), ".")
		var doc strings.Builder
		for i, k := range keys {
			ind := strings.Repeat("  ", i)
			if k == "-" {
				continue
			}
			if i > 0 && keys[i-1] == "-" {
				fmt.Fprintf(&doc, "%s- ", strings.Repeat("  ", i-2)+"  ")
				ind = ""
			}
			if i == len(keys)-1 {
				fmt.Fprintf(&doc, "%s%s: 0s\n", ind, k)
			} else {
				fmt.Fprintf(&doc, "%s%s:\n", ind, k)
			}
		}
		_, err := Parse([]byte(doc.String()))
		want := fmt.Sprintf("line %d: %s: 0 is not allowed", strings.Count(doc.String(), "\n"), p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s = 0:\n%s%v\nwant %q", p, doc.String(), err, want)
		}
	}
	c, err := Parse([]byte("health:\n  drain: {linger: 0s}\nsystem:\n  watchdog: {boot_grace: \"0\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Health.Drain.Linger != 0 || c.System.Watchdog.BootGrace != 0 || time.Duration(c.Health.Drain.Wait) != DefaultDrainWait {
		t.Fatalf("explicit zeros not kept: %+v %+v", c.Health.Drain, c.System.Watchdog)
	}
	b, _ := c.Marshal()
	c2, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Health.Drain.Linger != 0 || c2.System.Watchdog.BootGrace != 0 {
		t.Fatalf("zeros lost in a save and reload:\n%s", b)
	}
	c3, _ := Parse([]byte("node: {name: a}\n"))
	if time.Duration(c3.Health.Drain.Linger) != DefaultDrainLinger || c3.System.Watchdog.BootGrace != DefaultWatchdogBootGrace {
		t.Fatal("left out, linger and boot_grace did not get their defaults")
	}
}
