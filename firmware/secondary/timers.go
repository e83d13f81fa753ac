package secondary

import (
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// The SOA timers (RFC 1034 §4.3.5): refresh is how often the primary's
// serial is checked, retry how soon to try again after a failed check,
// expire how long the zone may be served without any successful check.
// Each is clamped to the configured bounds, so a zone with absurd values
// neither hammers its primary nor is never refreshed.

func clamp(v, lo, hi time.Duration) time.Duration {
	if v < lo {
		v = lo
	}
	if hi > 0 && v > hi {
		v = hi
	}
	return v
}

func secs(s uint32) time.Duration { return time.Duration(s) * time.Second }

func (m *Manager) refreshInterval(soa *dns.SOA) time.Duration {
	t := m.cfg.Timers
	return clamp(secs(soa.Refresh), t.RefreshMin, t.RefreshMax)
}

func (m *Manager) retryInterval(soa *dns.SOA, failures int) time.Duration {
	t := m.cfg.Timers
	if soa != nil {
		return clamp(secs(soa.Retry), t.RetryMin, t.RetryMax)
	}
	// No data yet: back off from the minimum, so a zone whose primary
	// is missing neither waits an hour nor retries every second forever.
	d := max(t.RetryMin, time.Second)
	for i := 1; i < failures && d < 5*time.Minute; i++ {
		d *= 2
	}
	return clamp(d, t.RetryMin, min(t.RetryMax, 5*time.Minute))
}

func (m *Manager) expire(soa *dns.SOA) time.Duration {
	return max(secs(soa.Expire), m.cfg.Timers.ExpireMin)
}

// armLocked sets the next refresh in d.
func (m *Manager) armLocked(z *zoneRun, d time.Duration) {
	if z.timer != nil {
		z.timer.Stop()
	}
	z.st.NextRefresh = time.Now().Add(d)
	z.timer = time.AfterFunc(d, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.triggerLocked(z, false, netip.Addr{})
	})
}

// armExpiryLocked sets the expiry timer at the zone's deadline.
func (m *Manager) armExpiryLocked(z *zoneRun) {
	if z.expiry != nil {
		z.expiry.Stop()
	}
	if z.st.ExpiresAt.IsZero() || z.st.Expired || z.removed {
		return
	}
	deadline := z.st.ExpiresAt
	z.expiry = time.AfterFunc(time.Until(deadline), func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if z.removed || m.closed || z.st.Expired || !z.st.ExpiresAt.Equal(deadline) {
			return
		}
		m.expireLocked(z, "no primary confirmed the zone within its SOA expire time")
	})
}

// expireLocked marks a zone expired: it answers SERVFAIL from now until
// a refresh succeeds (RFC 1034 §4.3.5: expired data must not be served).
func (m *Manager) expireLocked(z *zoneRun, why string) {
	if z.st.Expired || m.b.SOA(z.origin) == nil {
		return
	}
	z.st.Expired = true
	m.log.Error("secondary: zone expired; answering SERVFAIL until a refresh succeeds", "zone", z.origin,
		"why", why, "last_success", z.st.LastSuccess.Format(time.RFC3339), "last_error", z.st.LastError)
	m.b.SetExpired(z.origin, true, why)
	go m.persist(z)
}
