package interop

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// catalogText writes a catalog zone (RFC 9432) by hand, the way an
// operator's tooling would for a primary (here NSD) that does not
// generate catalogs itself. Each entry is "id zone [property=value]...".
func catalogText(origin string, serial uint32, entries ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 0\n@ SOA invalid. invalid. %d 60 30 600 0\n@ NS invalid.\nversion TXT \"2\"\n", origin, serial)
	for _, e := range entries {
		f := strings.Fields(e)
		fmt.Fprintf(&b, "%s.zones PTR %s\n", f[0], f[1])
		for _, p := range f[2:] {
			k, v, _ := strings.Cut(p, "=")
			switch k {
			case "group":
				fmt.Fprintf(&b, "group.%s.zones TXT %q\n", f[0], v)
			case "coo":
				fmt.Fprintf(&b, "coo.%s.zones PTR %s\n", f[0], v)
			}
		}
	}
	return b.String()
}

// Two catalogs served by NSD: group properties pick a member's primaries
// through the config's templates; a member listed by a catalog that does
// not own it is ignored until its owner's coo property hands it over,
// which keeps its data; a changed unique ID resets a member (dropped and
// transferred afresh).
func TestCatalogGroupsCOOAndReset(t *testing.T) {
	t.Parallel()
	const cat1, cat2 = "cat1.test.", "cat2.test."
	member := func(o string) string { return zoneText(o, 1, 60, 30, 600, "www A 192.0.2.1") }
	n := newNode(t, "ss-cat")
	nsd := startNSD(t, map[string]string{
		cat1:       catalogText(cat1, 1, "id1 m1.test.", "id2 m2.test. group=via-proxy"),
		cat2:       catalogText(cat2, 1, "id3 m3.test."),
		"m1.test.": member("m1.test."), "m2.test.": member("m2.test."), "m3.test.": member("m3.test."),
	}, n.DNS)
	px := startProxy(t, nsd.Addr)
	n.start(t, fmt.Sprintf(`templates:
  - name: direct
    primaries: [%q]
  - name: proxied
    primaries: [%q]
catalogs:
  - origin: %s
    template: direct
    groups:
      via-proxy: proxied
  - origin: %s
    template: direct
`, nsd.Addr, px.Addr, cat1, cat2))
	for _, m := range []string{"m1.test.", "m2.test.", "m3.test."} {
		waitAnswer(t, n.DNS, "www."+m, dns.TypeA, "NOERROR 192.0.2.1", 5*time.Second)
	}
	if z := n.zone(t, "m2.test."); len(z.Primaries) != 1 || z.Primaries[0] != px.Addr {
		t.Errorf("m2.test. (group via-proxy) should be fed through the proxied template: %+v", z.Primaries)
	}
	if z := n.zone(t, "m1.test."); len(z.Primaries) != 1 || z.Primaries[0] != nsd.Addr {
		t.Errorf("m1.test. (no group) should be fed from the catalog's primaries: %+v", z.Primaries)
	}

	// cat2 lists m1 too, but cat1 owns it and has no coo for it: ignored.
	nsd.update(t, cat2, catalogText(cat2, 2, "id3 m3.test.", "id1 m1.test."))
	waitFor(t, 5*time.Second, "cat2 reports m1 as owned by cat1", func() (bool, string) {
		s, _ := n.API.Secondary()
		for _, c := range s.Catalogs {
			if c.Origin == cat2 && strings.Contains(strings.Join(c.Problems, ";"), "m1.test. is a member of catalog cat1.test.") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", s.Catalogs)
	})
	m1 := n.zone(t, "m1.test.")
	if m1.Catalog != cat1 {
		t.Fatalf("m1 taken over without coo: %+v", m1)
	}

	// cat1 hands m1 over (coo → cat2): cat2 owns it now, same ID, so
	// the data is kept (no new transfer); cat1 dropping it then changes
	// nothing.
	nsd.update(t, cat1, catalogText(cat1, 2, "id1 m1.test. coo="+cat2, "id2 m2.test. group=via-proxy"))
	n.waitZone(t, "m1.test.", 5*time.Second, "owned by cat2", func(z api.SecondaryZone) bool { return z.Catalog == cat2 })
	nsd.update(t, cat1, catalogText(cat1, 3, "id2 m2.test. group=via-proxy"))
	n.waitZone(t, cat1, 5*time.Second, "cat1 at serial 3", func(z api.SecondaryZone) bool { return z.Serial == 3 && !z.Refreshing })
	// Read as a catalog: its members are decided (m1, owned by cat2, is
	// not cat1's to remove).
	waitFor(t, 5*time.Second, "cat1 read at serial 3", func() (bool, string) {
		s, _ := n.API.Secondary()
		for _, c := range s.Catalogs {
			if c.Origin == cat1 && c.Serial == 3 {
				return slices.Equal(c.Members, []string{"m2.test."}), fmt.Sprintf("%+v", c)
			}
		}
		return false, fmt.Sprintf("%+v", s.Catalogs)
	})
	if got := answer(n.DNS, "www.m1.test.", dns.TypeA); got != "NOERROR 192.0.2.1" {
		t.Fatalf("m1 after moving to cat2 and leaving cat1: %q", got)
	}
	if z := n.zone(t, "m1.test."); z.AXFRs != m1.AXFRs || z.Catalog != cat2 {
		t.Errorf("m1 was reset or lost by the change of ownership: before %+v, after %+v", m1, z)
	}

	// A new unique ID for m3: reset — transferred afresh.
	m3 := n.zone(t, "m3.test.")
	nsd.update(t, cat2, catalogText(cat2, 3, "id3b m3.test.", "id1 m1.test."))
	n.waitZone(t, "m3.test.", 5*time.Second, "reset and transferred again", func(z api.SecondaryZone) bool {
		return z.LastTransfer.After(m3.LastTransfer) && z.HasData
	})
	if !strings.Contains(n.Log(), "unique ID changed") {
		t.Errorf("no log line for the reset")
	}
	waitAnswer(t, n.DNS, "www.m3.test.", dns.TypeA, "NOERROR 192.0.2.1", 5*time.Second)
}
