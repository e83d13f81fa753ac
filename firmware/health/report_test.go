package health

import (
	"strings"
	"testing"
)

// TestReport: each part comes from its own source, a consumer gets the
// verdict of the parts it names, and a node that is not up yet is healthy
// in no part.
func TestReport(t *testing.T) {
	ready := true
	src := Sources{
		Ready:      func() bool { return ready },
		Alive:      func() (bool, string) { return true, "ok: 1 of 1 prefixes announced" },
		Expired:    func() []string { return []string{"old.example."} },
		Announcing: func() (bool, string) { return false, "session transit active" },
		Reachable:  func() (bool, string) { return true, "on the tailnet as ns1" },
	}
	r := src.Report()
	for _, x := range []struct {
		part Part
		ok   bool
		why  string
	}{
		{Serving, true, "ok: 1 of 1"},
		{ZonesFresh, false, "old.example."},
		{BGP, false, "transit active"},
		{Management, true, "ns1"},
	} {
		c := r.Part(x.part)
		if c.OK != x.ok || !strings.Contains(c.Why, x.why) {
			t.Errorf("%s = %+v, want ok=%v and %q", x.part, c, x.ok, x.why)
		}
	}
	// The watchdog's verdict: serving only, with its reason.
	if ok, why := r.Verdict(Serving); !ok || why != "ok: 1 of 1 prefixes announced" {
		t.Errorf("Verdict(Serving) = %v, %q", ok, why)
	}
	// Every part (the OTA commit, the status page): the failing ones, named.
	ok, why := r.Verdict()
	if ok || !strings.Contains(why, "zones_fresh: past SOA expire: old.example.") || !strings.Contains(why, "bgp: session transit active") || strings.Contains(why, "serving") {
		t.Errorf("Verdict() = %v, %q", ok, why)
	}
	if ok, _ := r.Verdict(Serving, Management); !ok {
		t.Error("Verdict(Serving, Management) = false")
	}
	if ok, why := r.Verdict("uptime"); ok || !strings.Contains(why, "no such part") {
		t.Errorf("unknown part: %v %q", ok, why)
	}

	ready = false
	r = src.Report()
	for _, p := range Parts {
		if c := r.Part(p); c.OK || c.Why != "starting" {
			t.Errorf("not ready: %s %+v", p, c)
		}
	}

	// Without BGP, overlay or expiring zones, those parts are fine.
	r = Sources{Alive: src.Alive}.Report()
	if ok, why := r.Verdict(); !ok {
		t.Errorf("minimal node: %s", why)
	}
}
