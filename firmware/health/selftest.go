package health

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// SelfTest asks this node's own DNS server (addr, one of its listen
// addresses) for the SOA of every zone in serials, as a client would, and
// checks each answer: NOERROR, authoritative, from this node (the NSID,
// when set), and carrying the serial the node says it serves. It is the
// proof, beyond "the server answers", that every zone is really served:
// the OTA commit asks it at the end of a new firmware's soak. Every
// failing zone is named (up to a few), so the reason recorded for a
// failed trial says what broke.
func SelfTest(ctx context.Context, addr netip.AddrPort, nsid string, serials map[string]uint32) error {
	probe := dnsProbe(nsid)
	var bad []string
	for _, z := range slices.Sorted(maps.Keys(serials)) {
		want := serials[z]
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		got, err := soaSerial(qctx, probe, addr, z, nsid)
		cancel()
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s SOA: %v", z, err))
		case got != want:
			bad = append(bad, fmt.Sprintf("%s SOA: serial %d answered, %d loaded", z, got, want))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(bad) == 0 {
		return nil
	}
	if len(bad) > 5 {
		bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
	}
	return fmt.Errorf("self-test from %s: %s", addr, strings.Join(bad, "; "))
}

// soaSerial checks the reply with the prefix checks' own probe (one
// definition of a good answer), then asks once more with miekg/dns to
// read the serial.
func soaSerial(ctx context.Context, probe ProbeFunc, addr netip.AddrPort, zone, nsid string) (uint32, error) {
	if err := probe(ctx, addr, Query{Name: dns.Fqdn(zone), Type: dns.TypeSOA, Class: dns.ClassINET}); err != nil {
		return 0, err
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	m.RecursionDesired = false
	c := &dns.Client{}
	r, _, err := c.ExchangeContext(ctx, m, addr.String())
	if err != nil {
		return 0, err
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, nil
		}
	}
	return 0, fmt.Errorf("no SOA in the answer")
}

// SerialsAtLeast says whether every zone in before is served now with a
// serial at least its serial before (RFC 1982 serial arithmetic: a
// serial that wrapped counts as newer), naming the ones that are not.
func SerialsAtLeast(before, now map[string]uint32) (bool, string) {
	var bad []string
	for _, z := range slices.Sorted(maps.Keys(before)) {
		n, ok := now[z]
		switch {
		case !ok:
			bad = append(bad, z+" not served")
		case int32(n-before[z]) < 0:
			bad = append(bad, fmt.Sprintf("%s serial %d, was %d before the update", z, n, before[z]))
		}
	}
	if len(bad) > 0 {
		if len(bad) > 5 {
			bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
		}
		return false, strings.Join(bad, "; ")
	}
	return true, fmt.Sprintf("%d zone(s) at or past their serials before the update", len(before))
}

// SelfAddr picks the address the self-test asks among the DNS server's
// bound addresses: the first, with a wildcard turned into loopback.
func SelfAddr(listen []string) (netip.AddrPort, error) {
	for _, a := range listen {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			continue
		}
		if ap.Addr().IsUnspecified() {
			lo := netip.MustParseAddr("127.0.0.1")
			if ap.Addr().Is6() {
				lo = netip.IPv6Loopback()
			}
			ap = netip.AddrPortFrom(lo, ap.Port())
		}
		return ap, nil
	}
	return netip.AddrPort{}, fmt.Errorf("no DNS listen address to test (have %v)", listen)
}
