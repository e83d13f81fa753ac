package interop

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// Knot as the primary, generating a catalog zone (RFC 9432) from its
// member zones; the node is configured with the catalog only. A member
// added on Knot is answered within 2 s, a member removed is REFUSED
// within 2 s, and an incremental change travels as IXFR (the node's
// counters and Knot's log both say so) and is answered within 1 s. After
// a restart the node answers from its store at once, with its transfer
// state intact.
func TestKnotCatalogPrimary(t *testing.T) {
	t.Parallel()
	const cat = "cat.test."
	n := newNode(t, "ss-knot")
	member := func(origin string) knotZone {
		return knotZone{Origin: origin, Member: true, Text: zoneText(origin, 1, 60, 30, 600, "www A 192.0.2.10")}
	}
	knot := startKnot(t, knotConfig{Catalog: cat, Notify: n.DNS, Zones: []knotZone{member("m1.test."), member("m2.test.")}})
	conf := fmt.Sprintf("catalogs:\n  - origin: %s\n    primaries: [%q]\noutbound:\n  allow:\n    - from: [127.0.0.1]\n", cat, knot.Addr)
	n.start(t, conf)

	for _, m := range []string{"m1.test.", "m2.test."} {
		waitAnswer(t, n.DNS, "www."+m, dns.TypeA, "NOERROR 192.0.2.10", 5*time.Second)
	}

	// A member added on Knot.
	start := time.Now()
	knot.addMember(t, "m3.test.", cat, zoneText("m3.test.", 1, 60, 30, 600, "www A 192.0.2.30"))
	waitAnswer(t, n.DNS, "www.m3.test.", dns.TypeA, "NOERROR 192.0.2.30", 5*time.Second)
	took := time.Since(start)
	t.Logf("member added on Knot: answered %v after knotc conf-commit began", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("new member answered after %v; the bar is 2 s", took)
	}
	n.waitZone(t, "m3.test.", 2*time.Second, "a member of "+cat, func(z api.SecondaryZone) bool {
		return z.Kind == "member" && z.Catalog == cat && z.AXFRs == 1
	})

	// An incremental change to a member: IXFR, not AXFR.
	start = time.Now()
	knot.set(t, "m1.test.", "www", "60", "A", "192.0.2.99")
	waitAnswer(t, n.DNS, "www.m1.test.", dns.TypeA, "NOERROR 192.0.2.99", 5*time.Second)
	took = time.Since(start)
	t.Logf("change on Knot: answered %v after knotc zone-commit began", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("change answered after %v; the bar is 1 s", took)
	}
	n.waitZone(t, "m1.test.", 2*time.Second, "one AXFR then one IXFR", func(z api.SecondaryZone) bool {
		return z.IXFRs == 1 && z.AXFRs == 1 && z.Serial == 2
	})
	if log := knot.Log(); !strings.Contains(log, "[m1.test.] IXFR, outgoing") {
		t.Errorf("Knot's log shows no outgoing IXFR of m1.test.")
	}
	// The change went into the node's journal as it came: the node
	// serves it onwards as IXFR (asked by kdig, another implementation).
	kdig := testenv.RequireTool(t, "kdig")
	host, port, _ := strings.Cut(n.DNS, ":")
	out, err := exec.Command(kdig, "@"+host, "-p", port, "+nocomments", "IXFR=1", "m1.test.").CombinedOutput()
	if soas := strings.Count(string(out), "\tSOA\t"); err != nil || soas != 4 || !strings.Contains(string(out), "192.0.2.99") {
		t.Errorf("IXFR=1 from the node: want SOA 2, SOA 1, (removed), SOA 2, (added), SOA 2; got %d SOAs (%v):\n%s", soas, err, out)
	}

	// A member removed on Knot: REFUSED.
	start = time.Now()
	knot.removeZone(t, "m2.test.")
	waitAnswer(t, n.DNS, "www.m2.test.", dns.TypeA, "REFUSED ", 5*time.Second)
	took = time.Since(start)
	t.Logf("member removed on Knot: REFUSED %v after knotc conf-commit began", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("removed member REFUSED after %v; the bar is 2 s", took)
	}
	s, err := n.API.Secondary()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Catalogs) != 1 || !slices.Equal(s.Catalogs[0].Members, []string{"m1.test.", "m3.test."}) {
		t.Errorf("catalog status: %+v", s.Catalogs)
	}
	// The catalog itself travelled by IXFR too once Knot had a journal.
	n.waitZone(t, cat, 2*time.Second, "catalog updated by IXFR", func(z api.SecondaryZone) bool { return z.IXFRs > 0 })

	// Restart: served from the store before any transfer, with the
	// transfer state (counters, serials) kept.
	knot.Stop(stopGrace)
	n.restart(t, conf)
	if got := answer(n.DNS, "www.m1.test.", dns.TypeA); got != "NOERROR 192.0.2.99" {
		t.Errorf("after restart, m1.test. answers %q before any transfer", got)
	}
	if got := answer(n.DNS, "www.m2.test.", dns.TypeA); got != "REFUSED " {
		t.Errorf("after restart, removed m2.test. answers %q", got)
	}
	if z := n.zone(t, "m1.test."); z.IXFRs != 1 || z.LastTransfer.IsZero() || z.ExpiresAt.IsZero() {
		t.Errorf("transfer state not kept across the restart: %+v", z)
	}
}
