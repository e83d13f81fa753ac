package interop

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// NSD as the primary: the first transfer is an AXFR, and a change is
// answered by the node within 1 s of NSD reloading the zone (which sends
// the NOTIFY). The zone's refresh timer is a minute, so only the NOTIFY
// can explain an update that fast.
func TestNSDPrimaryAXFRAndNotify(t *testing.T) {
	t.Parallel()
	const origin = "nsd.test."
	n := newNode(t, "ss-nsd")
	v1 := zoneText(origin, 1, 60, 30, 600, "www A 192.0.2.1")
	nsd := startNSD(t, map[string]string{origin: v1}, n.DNS)
	n.start(t, fmt.Sprintf("zones:\n  - origin: %s\n    primaries: [%q]\n", origin, nsd.Addr))

	waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "NOERROR 192.0.2.1", 5*time.Second)
	n.waitZone(t, origin, 2*time.Second, "one AXFR, serial 1", func(z api.SecondaryZone) bool {
		return z.AXFRs == 1 && z.Serial == 1 && z.Kind == "zone"
	})

	for serial := uint32(2); serial <= 3; serial++ {
		ip := fmt.Sprintf("192.0.2.%d", serial)
		nsd.update(t, origin, zoneText(origin, serial, 60, 30, 600, "www A "+ip))
		took := waitAnswer(t, n.DNS, "www."+origin, dns.TypeA, "NOERROR "+ip, 3*time.Second)
		t.Logf("NSD change %d answered %v after NSD's reload (its NOTIFY follows the reload)", serial, took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("change answered after %v; the bar is 1 s from the NOTIFY", took)
		}
	}
	// A NOTIFY from an address that is not the zone's primary is refused.
	if rc := notifyFrom("127.0.0.2", n.DNS, origin); rc != dns.RcodeRefused {
		t.Errorf("NOTIFY from 127.0.0.2: %s, want REFUSED", dns.RcodeToString[rc])
	}

	// NSD 4 keeps no IXFR journal for zone file reloads; it answers our
	// IXFR with the whole zone, which counts as an AXFR.
	n.waitZone(t, origin, 2*time.Second, "three full transfers, serial 3 here and there", func(z api.SecondaryZone) bool {
		return z.Serial == 3 && z.PrimarySerial != nil && *z.PrimarySerial == 3 && z.LastError == "" && z.AXFRs == 3 && z.IXFRs == 0
	})
}

// notifyFrom sends a NOTIFY for origin to addr from the local address src
// and returns the rcode of the answer (-1 for none).
func notifyFrom(src, addr, origin string) int {
	m := new(dns.Msg)
	m.SetNotify(origin)
	c := &dns.Client{Timeout: time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return -1
	}
	return r.Rcode
}
