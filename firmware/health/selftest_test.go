package health

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestSelfTest runs the OTA commit's self-test against the real DNS
// server: every served zone's SOA, from this node, at the loaded serial.
func TestSelfTest(t *testing.T) {
	s, addr := server(t, "node1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := SelfTest(ctx, addr, "node1", s.Serials()); err != nil {
		t.Errorf("a served zone: %v", err)
	}
	for _, c := range []struct {
		name    string
		nsid    string
		serials map[string]uint32
		want    string
	}{
		{"serial behind", "node1", map[string]uint32{"example.test.": 2}, "serial 1 answered, 2 loaded"},
		{"zone not served", "node1", map[string]uint32{"example.test.": 1, "other.test.": 1}, "other.test. SOA: answered REFUSED"},
		{"another node", "node2", map[string]uint32{"example.test.": 1}, "not this node"},
	} {
		if err := SelfTest(ctx, addr, c.nsid, c.serials); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestSerialsAtLeast(t *testing.T) {
	for _, c := range []struct {
		before, now map[string]uint32
		ok          bool
		want        string
	}{
		{map[string]uint32{"a.": 5}, map[string]uint32{"a.": 5, "b.": 1}, true, ""},
		{map[string]uint32{"a.": 5}, map[string]uint32{"a.": 6}, true, ""},
		{map[string]uint32{"a.": 0xfffffff0}, map[string]uint32{"a.": 3}, true, ""}, // wrapped: newer
		{map[string]uint32{"a.": 5}, map[string]uint32{"a.": 4}, false, "a. serial 4, was 5"},
		{map[string]uint32{"a.": 5}, map[string]uint32{}, false, "a. not served"},
	} {
		ok, why := SerialsAtLeast(c.before, c.now)
		if ok != c.ok || (!ok && !strings.Contains(why, c.want)) {
			t.Errorf("SerialsAtLeast(%v, %v) = %v %q", c.before, c.now, ok, why)
		}
	}
}
