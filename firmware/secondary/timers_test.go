package secondary

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestTimers(t *testing.T) {
	m := New(Config{Timers: Timers{RefreshMin: 2 * time.Second, RefreshMax: time.Hour, RetryMin: time.Second, RetryMax: 10 * time.Minute, ExpireMin: 3 * time.Second}}, nil)
	soa := &dns.SOA{Refresh: 1, Retry: 86400, Expire: 1}
	if got := m.refreshInterval(soa); got != 2*time.Second {
		t.Errorf("refresh below the minimum: %v", got)
	}
	soa.Refresh = 7200
	if got := m.refreshInterval(soa); got != time.Hour {
		t.Errorf("refresh above the maximum: %v", got)
	}
	if got := m.retryInterval(soa, 3); got != 10*time.Minute {
		t.Errorf("retry above the maximum: %v", got)
	}
	if got := m.expire(soa); got != 3*time.Second {
		t.Errorf("expire below the minimum: %v", got)
	}
	// No data yet: back off from the minimum, doubling, up to 5 minutes.
	var prev time.Duration
	for f := 1; f <= 12; f++ {
		d := m.retryInterval(nil, f)
		if d < prev || d > 5*time.Minute {
			t.Fatalf("retry %d without data: %v after %v", f, d, prev)
		}
		prev = d
	}
	if prev != 5*time.Minute {
		t.Errorf("backoff tops out at %v", prev)
	}
}
