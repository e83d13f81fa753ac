package interop

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/api"

	"github.com/shoestring-dns/shoestring/test/refserver"
)

// A Shoestring node as the hidden primary of another: zones added to A
// through its API are listed in the catalog A produces; B consumes that
// catalog, so a zone added on A is answered by B within 2 s, a change on
// A reaches B by NOTIFY and IXFR within 1 s, and a zone deleted on A is
// REFUSED by B within 2 s.
func TestShoestringPrimaryForShoestring(t *testing.T) {
	t.Parallel()
	const cat = "catalog.a.test."
	a, b := newNode(t, "ss-a"), newNode(t, "ss-b")
	a.start(t, fmt.Sprintf(`outbound:
  allow:
    - from: [127.0.0.1]
  notify: [%q]
  catalog: %s
`, b.DNS, cat))
	b.start(t, fmt.Sprintf("catalogs:\n  - origin: %s\n    primaries: [%q]\n", cat, a.DNS))
	b.waitZone(t, cat, 5*time.Second, "catalog transferred", func(z api.SecondaryZone) bool { return z.HasData })

	const origin = "z1.test."
	start := time.Now()
	if _, err := a.API.PutZone(origin, []byte(zoneText(origin, 1, 60, 30, 600, "www A 192.0.2.1"))); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, b.DNS, "www."+origin, dns.TypeA, "NOERROR 192.0.2.1", 5*time.Second)
	took := time.Since(start)
	t.Logf("zone added on A: answered by B %v after the API call", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("zone added on A answered by B after %v; the bar is 2 s", took)
	}

	for serial := uint32(2); serial <= 3; serial++ {
		ip := fmt.Sprintf("192.0.2.%d", serial)
		start = time.Now()
		if _, err := a.API.PutZone(origin, []byte(zoneText(origin, serial, 60, 30, 600, "www A "+ip, "extra A 192.0.2.200"))); err != nil {
			t.Fatal(err)
		}
		waitAnswer(t, b.DNS, "www."+origin, dns.TypeA, "NOERROR "+ip, 5*time.Second)
		took = time.Since(start)
		t.Logf("change %d on A: answered by B %v after the API call", serial, took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("change on A answered by B after %v; the bar is 1 s", took)
		}
	}
	b.waitZone(t, origin, 2*time.Second, "one AXFR then two IXFRs", func(z api.SecondaryZone) bool {
		return z.AXFRs == 1 && z.IXFRs == 2 && z.Kind == "member"
	})
	b.waitZone(t, cat, 2*time.Second, "catalog updated by IXFR", func(z api.SecondaryZone) bool { return z.IXFRs > 0 })
	sa, err := a.API.Secondary()
	if err != nil {
		t.Fatal(err)
	}
	if sa.Outbound.IXFRs < 2 || sa.Outbound.Notifies == 0 {
		t.Errorf("A's outbound counters: %+v", sa.Outbound)
	}

	start = time.Now()
	if err := a.API.DeleteZone(origin); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, b.DNS, "www."+origin, dns.TypeA, "REFUSED ", 5*time.Second)
	took = time.Since(start)
	t.Logf("zone deleted on A: REFUSED by B %v after the API call", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("zone deleted on A REFUSED by B after %v; the bar is 2 s", took)
	}
}

// Knot as a secondary of a Shoestring node, with TSIG: our outbound
// AXFR, IXFR and NOTIFY interoperate, and transfers without the key are
// refused.
func TestKnotSecondaryOfShoestring(t *testing.T) {
	t.Parallel()
	const origin = "down.test."
	key := []string{"down-key", "hmac-sha512", "zbVhKm3oNquPm/e4QTZ1i5tnjEwrq6RXtb9MzYpE6nO5G9iVTLnHJo5ZyGKeAz4ZOVI4Itpp2z2hO0M9R6CQBw=="}
	a := newNode(t, "ss-primary")
	knotPort := refserver.Port(t)
	knotAddr := fmt.Sprintf("127.0.0.1:%d", knotPort)
	a.start(t, fmt.Sprintf(`keys:
  - name: %s
    algorithm: %s
    secret: %q
outbound:
  allow:
    - key: %s
  notify:
    - address: %s
      key: %s
`, key[0], key[1], key[2], key[0], knotAddr, key[0]))
	if _, err := a.API.PutZone(origin, []byte(zoneText(origin, 1, 60, 30, 600, "www A 192.0.2.1"))); err != nil {
		t.Fatal(err)
	}
	knot := startKnot(t, knotConfig{Port: knotPort, Key: tsigKey(key), Zones: []knotZone{{Origin: origin, Primary: a.DNS}}})
	waitAnswer(t, knot.Addr, "www."+origin, dns.TypeA, "NOERROR 192.0.2.1", 10*time.Second)

	for serial := uint32(2); serial <= 3; serial++ {
		ip := fmt.Sprintf("192.0.2.%d", serial)
		start := time.Now()
		if _, err := a.API.PutZone(origin, []byte(zoneText(origin, serial, 60, 30, 600, "www A "+ip))); err != nil {
			t.Fatal(err)
		}
		waitAnswer(t, knot.Addr, "www."+origin, dns.TypeA, "NOERROR "+ip, 5*time.Second)
		t.Logf("change %d on Shoestring answered by Knot %v after the API call", serial, time.Since(start).Round(time.Millisecond))
	}
	log := knot.Log()
	if !strings.Contains(log, "IXFR, incoming") || !strings.Contains(log, "AXFR, incoming") {
		t.Errorf("Knot's log should show an AXFR then IXFRs incoming from us")
	}
	s, err := a.API.Secondary()
	if err != nil {
		t.Fatal(err)
	}
	if s.Outbound.AXFRs != 1 || s.Outbound.IXFRs < 2 {
		t.Errorf("outbound counters: %+v", s.Outbound)
	}
	// Without the key: refused.
	if r := axfrUnsigned(a.DNS, origin); r != dns.RcodeRefused {
		t.Errorf("unsigned AXFR got %s, want REFUSED", dns.RcodeToString[r])
	}
}

// axfrUnsigned asks for an AXFR without TSIG and returns the rcode.
func axfrUnsigned(addr, origin string) int {
	m := new(dns.Msg)
	m.SetAxfr(origin)
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return -1
	}
	return r.Rcode
}
