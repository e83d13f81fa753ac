package interop

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// BIND as the primary, transferring only with TSIG: with the right key
// the node gets the zone, BIND's signed NOTIFY is accepted and the change
// comes by signed IXFR; restarted with a wrong secret, the node still
// answers from its store at once, but BIND's NOTIFY and every refresh
// are refused on the signature, and the old data keeps being served.
func TestBINDPrimaryTSIG(t *testing.T) {
	t.Parallel()
	const origin = "bind.test."
	key := []string{"xfr-key", "hmac-sha256", "2nPUDtGRFhz9kVWP/0oXUrWEqNcmn0Q59Z0vd+m0sJ8="}
	wrong := "c29tZSBvdGhlciBzZWNyZXQgZW50aXJlbHkhIQ=="
	conf := func(secret string) string {
		return fmt.Sprintf(`keys:
  - name: %s
    algorithm: %s
    secret: %q
zones:
  - origin: %s
    primaries:
      - address: %s
        key: %s
`, key[0], key[1], secret, origin, "%s", key[0])
	}
	n := newNode(t, "ss-bind")
	bind := startBIND(t, origin, zoneText(origin, 1, 60, 30, 600, "www A 192.0.2.1"), key, n.DNS)
	n.start(t, fmt.Sprintf(conf(key[2]), bind.Addr))
	waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "NOERROR 192.0.2.1", 5*time.Second)

	start := time.Now()
	bind.update(t, zoneText(origin, 2, 60, 30, 600, "www A 192.0.2.2"))
	waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "NOERROR 192.0.2.2", 5*time.Second)
	took := time.Since(start)
	t.Logf("BIND change answered %v after BIND's reload (signed NOTIFY, signed IXFR)", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("change answered after %v; the bar is 1 s", took)
	}
	n.waitZone(t, origin, 2*time.Second, "one AXFR then one IXFR, with TSIG", func(z api.SecondaryZone) bool {
		return z.AXFRs == 1 && z.IXFRs == 1
	})

	// The wrong secret under the same key name.
	n.restart(t, fmt.Sprintf(conf(wrong), bind.Addr))
	if got := answer(n.DNS, "www."+origin, dns.TypeA); got != "NOERROR 192.0.2.2" {
		t.Fatalf("after restart: %q, want the stored version at once", got)
	}
	bind.update(t, zoneText(origin, 3, 60, 30, 600, "www A 192.0.2.3"))
	if err := n.API.Refresh(origin, false); err != nil {
		t.Fatal(err)
	}
	z := n.waitZone(t, origin, 5*time.Second, "refresh refused on TSIG", func(z api.SecondaryZone) bool {
		return z.Failures > 0 && strings.Contains(z.LastError, "TSIG")
	})
	t.Logf("with the wrong secret: %s", z.LastError)
	// BIND's NOTIFY, signed with the real key, arrives and is refused on
	// its signature.
	waitFor(t, 5*time.Second, "BIND's NOTIFY refused on its signature", func() (bool, string) {
		return strings.Contains(n.Log(), "NOTIFY with a bad or missing signature"), "not in the node's log"
	})
	if got := answer(n.DNS, "www."+origin, dns.TypeA); got != "NOERROR 192.0.2.2" {
		t.Fatalf("with the wrong key the zone answers %q; the old data must stay", got)
	}
	if z := n.zone(t, origin); z.Serial != 2 {
		t.Fatalf("serial %d after refused transfers", z.Serial)
	}
}
