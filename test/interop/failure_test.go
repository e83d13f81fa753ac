package interop

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// fastTimers lets SOA timers of a second or two through unclamped.
const fastTimers = "timers:\n  refresh_min: 1s\n  retry_min: 1s\n  expire_min: 1s\n"

func secondaryConf(origin, primary, extra string) string {
	return fmt.Sprintf("zones:\n  - origin: %s\n    primaries: [%q]\n%s", origin, primary, extra)
}

// The primary goes away: the node keeps answering while it retries, then
// at the zone's SOA expire answers SERVFAIL and reports the zone expired;
// when the primary is back, the zone is served again.
func TestPrimaryDownRetryThenExpiry(t *testing.T) {
	t.Parallel()
	const origin = "down.test."
	text := zoneText(origin, 1, 1, 1, 5, "www A 192.0.2.1") // refresh 1 s, retry 1 s, expire 5 s
	nsd := startNSD(t, map[string]string{origin: text}, "")
	n := startNode(t, "ss-down", secondaryConf(origin, nsd.Addr, fastTimers))
	waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "NOERROR 192.0.2.1", 5*time.Second)
	n.waitZone(t, origin, 5*time.Second, "refreshed by its timer", func(z api.SecondaryZone) bool {
		return strings.HasPrefix(z.LastResult, "up to date")
	})

	nsd.Stop(stopGrace)
	down := time.Now()
	z := n.waitZone(t, origin, 5*time.Second, "retrying", func(z api.SecondaryZone) bool { return z.Failures >= 2 })
	if z.Expired {
		t.Fatalf("expired after two retries already: %+v", z)
	}
	if got := answer(n.DNS, "www."+origin, dns.TypeA); got != "NOERROR 192.0.2.1" {
		t.Fatalf("while retrying, before expiry: %q", got)
	}
	waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "SERVFAIL ", 10*time.Second)
	took := time.Since(down)
	t.Logf("primary down: retried %d times, SERVFAIL %v after it went (expire 5 s from the last refresh)", z.Failures, took.Round(time.Millisecond))
	z = n.zone(t, origin)
	if !z.Expired || z.LastError == "" {
		t.Fatalf("zone answers SERVFAIL but its status says: %+v", z)
	}
	st, err := n.API.Status()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(st.Problems, "\n"), origin+": expired") {
		t.Errorf("node status does not report the expired zone: %v", st.Problems)
	}

	// Expired is remembered: restarted while the primary is still down,
	// the node does not serve the stale data again.
	n.restart(t, secondaryConf(origin, nsd.Addr, fastTimers))
	if got := answer(n.DNS, "www."+origin, dns.TypeA); got != "SERVFAIL " {
		t.Errorf("restarted with the zone expired: %q", got)
	}

	nsd.restart(t, origin)
	waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "NOERROR 192.0.2.1", 5*time.Second)
	n.waitZone(t, origin, 2*time.Second, "no longer expired", func(z api.SecondaryZone) bool { return !z.Expired })
}

// A transfer cut in the middle (the connection drops after 20 kB of a
// zone of about 100 kB): rejected, the old version keeps serving; once
// the link is whole the new version arrives.
func TestTransferCutMidway(t *testing.T) {
	t.Parallel()
	const origin = "cut.test."
	big := func(serial uint32, www string) string {
		extra := []string{"www A " + www}
		for i := range 3000 {
			extra = append(extra, fmt.Sprintf("host%d A 198.51.100.%d", i, i%250))
		}
		return zoneText(origin, serial, 60, 1, 600, extra...)
	}
	n := newNode(t, "ss-cut")
	nsd := startNSD(t, map[string]string{origin: big(1, "192.0.2.1")}, n.DNS)
	px := startProxy(t, nsd.Addr)
	n.start(t, secondaryConf(origin, px.Addr, fastTimers))
	waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "NOERROR 192.0.2.1", 5*time.Second)

	px.cutAt.Store(20000)
	nsd.update(t, origin, big(2, "192.0.2.2"))
	z := n.waitZone(t, origin, 5*time.Second, "transfer cut", func(z api.SecondaryZone) bool {
		return strings.Contains(z.LastError, "cut after")
	})
	t.Logf("cut transfer: %s", z.LastError)
	if got := answer(n.DNS, "www."+origin, dns.TypeA); got != "NOERROR 192.0.2.1" || z.Serial != 1 || px.cuts.Load() == 0 {
		t.Fatalf("after a cut transfer: answer %q, serial %d, cuts %d", got, z.Serial, px.cuts.Load())
	}
	if c := answer(n.DNS, "host2999."+origin, dns.TypeA); c != "NOERROR 198.51.100.249" {
		t.Fatalf("the old version is not whole: %q", c)
	}

	px.cutAt.Store(0)
	if err := n.API.Refresh(origin, false); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "NOERROR 192.0.2.2", 5*time.Second)
}

// The primary's serial goes backwards (RFC 1982: 5 is older than 10):
// the node keeps its version and says why; an operator's retransfer
// takes the primary's.
func TestSerialBackwards(t *testing.T) {
	t.Parallel()
	const origin = "back.test."
	n := newNode(t, "ss-back")
	nsd := startNSD(t, map[string]string{origin: zoneText(origin, 10, 60, 30, 600, "www A 192.0.2.10")}, n.DNS)
	n.start(t, secondaryConf(origin, nsd.Addr, fastTimers))
	waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "NOERROR 192.0.2.10", 5*time.Second)

	nsd.update(t, origin, zoneText(origin, 5, 60, 30, 600, "www A 192.0.2.5"))
	z := n.waitZone(t, origin, 5*time.Second, "primary behind noticed", func(z api.SecondaryZone) bool {
		return z.PrimarySerial != nil && *z.PrimarySerial == 5
	})
	t.Logf("serial backwards: %s", z.LastResult)
	if !strings.Contains(z.LastResult, "behind ours 10") || z.Serial != 10 {
		t.Errorf("status: %+v", z)
	}
	if got := answer(n.DNS, "www."+origin, dns.TypeA); got != "NOERROR 192.0.2.10" {
		t.Fatalf("the newer version must stay: %q", got)
	}
	if !strings.Contains(n.Log(), "behind ours 10") {
		t.Errorf("no log line about the serial going backwards")
	}

	if err := n.API.Refresh(origin, true); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "NOERROR 192.0.2.5", 5*time.Second)
}

// A zone that grows past the configured limits is refused whole, with
// the limit named in the status, and the old version keeps serving.
func TestOversizeTransfer(t *testing.T) {
	t.Parallel()
	const origin = "big.test."
	hosts := func(serial uint32, n int) string {
		extra := []string{fmt.Sprintf("www A 192.0.2.%d", serial)}
		for i := range n {
			extra = append(extra, fmt.Sprintf("host%d A 198.51.100.%d", i, i%250))
		}
		return zoneText(origin, serial, 60, 30, 600, extra...)
	}
	n := newNode(t, "ss-big")
	nsd := startNSD(t, map[string]string{origin: hosts(1, 50)}, n.DNS)
	n.start(t, secondaryConf(origin, nsd.Addr, fastTimers+"limits:\n  max_records: 100\n"))
	waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "NOERROR 192.0.2.1", 5*time.Second)

	nsd.update(t, origin, hosts(2, 500))
	z := n.waitZone(t, origin, 5*time.Second, "refused over the limit", func(z api.SecondaryZone) bool { return z.Rejected > 0 })
	t.Logf("oversize: %s", z.LastError)
	if !strings.Contains(z.LastError, "max_records") || z.Serial != 1 {
		t.Errorf("status: %+v", z)
	}
	if got := answer(n.DNS, "www."+origin, dns.TypeA); got != "NOERROR 192.0.2.1" {
		t.Fatalf("the old version must stay: %q", got)
	}
}

// A zone the primary serves but that breaks the DNS rules (here a DS
// record where there is no delegation, which Knot serves with its
// semantic checks off): the IXFR does not validate, nor does the AXFR
// tried next; both are rejected with the reason, and the old version
// keeps serving.
func TestInvalidZoneRejected(t *testing.T) {
	t.Parallel()
	const origin = "invalid.test."
	n := newNode(t, "ss-invalid")
	knot := startKnot(t, knotConfig{Notify: n.DNS, Zones: []knotZone{{Origin: origin, Text: zoneText(origin, 1, 60, 30, 600, "www A 192.0.2.1")}}})
	n.start(t, secondaryConf(origin, knot.Addr, ""))
	waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "NOERROR 192.0.2.1", 5*time.Second)

	knot.add(t, origin, "sub 60 DS 12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE", "new 60 A 192.0.2.2")
	z := n.waitZone(t, origin, 5*time.Second, "invalid transfer rejected", func(z api.SecondaryZone) bool { return z.Rejected > 0 })
	t.Logf("invalid zone: %s", z.LastError)
	if !strings.Contains(z.LastError, "DS without NS") || z.Serial != 1 {
		t.Errorf("status: %+v", z)
	}
	if got := answer(n.DNS, "new."+origin, dns.TypeA); got != "NXDOMAIN " {
		t.Errorf("a record of the rejected version is served: %q", got)
	}
	if got := answer(n.DNS, "www."+origin, dns.TypeA); got != "NOERROR 192.0.2.1" {
		t.Errorf("the old version must stay: %q", got)
	}
}
