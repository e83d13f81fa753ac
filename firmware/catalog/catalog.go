// Package catalog reads and writes catalog zones (RFC 9432): a zone whose
// records list other zones ("members"), transferred like any zone, so a
// fleet of secondaries learns which zones to serve from the same
// primaries that serve them. Consumers parse a catalog with Parse; a node
// that is itself a primary publishes its zones with Build.
package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// Version is the catalog schema version we read and write (RFC 9432 §4.2).
const Version = "2"

// Member is one zone listed in a catalog.
type Member struct {
	Zone string // canonical
	// ID is the member's unique label: when it changes, the zone's state
	// is reset (RFC 9432 §5.1, "zone reset").
	ID string
	// Groups are the member's group properties (§4.4.2), mapped to config
	// templates by the consumer.
	Groups []string
	// COO, when set, names the catalog the member may move to (change of
	// ownership, §4.4.1), canonical.
	COO string
}

// Catalog is a parsed catalog zone.
type Catalog struct {
	Origin  string
	Serial  uint32
	Members map[string]Member // by member zone
	// Problems are entries that were ignored, for the log and the API.
	Problems []string
}

// Parse reads a catalog zone. A zone without the supported version
// property is refused whole (§4.2: a consumer must not guess at another
// schema); a broken member entry is skipped and reported in Problems.
func Parse(z *zone.Zone) (*Catalog, error) {
	origin := zone.Canonical(z.Origin)
	c := &Catalog{Origin: origin, Serial: z.Serial(), Members: map[string]Member{}}
	zonesSuffix := "zones." + origin
	versionName := "version." + origin

	type entry struct {
		ptrs   []string
		groups []string
		coo    []string
	}
	entries := map[string]*entry{}
	get := func(id string) *entry {
		e := entries[id]
		if e == nil {
			e = &entry{}
			entries[id] = e
		}
		return e
	}
	var versions []string
	for _, rr := range z.Records {
		h := rr.Header()
		owner := zone.Canonical(h.Name)
		if owner == versionName && h.Rrtype == dns.TypeTXT {
			versions = append(versions, strings.Join(rr.(*dns.TXT).Txt, ""))
			continue
		}
		if !strings.HasSuffix(owner, "."+zonesSuffix) {
			continue
		}
		labels := dns.SplitDomainName(strings.TrimSuffix(owner, "."+zonesSuffix))
		switch {
		case len(labels) == 1 && h.Rrtype == dns.TypePTR:
			e := get(labels[0])
			e.ptrs = append(e.ptrs, zone.Canonical(rr.(*dns.PTR).Ptr))
		case len(labels) == 2 && labels[0] == "group" && h.Rrtype == dns.TypeTXT:
			e := get(labels[1])
			e.groups = append(e.groups, strings.Join(rr.(*dns.TXT).Txt, ""))
		case len(labels) == 2 && labels[0] == "coo" && h.Rrtype == dns.TypePTR:
			e := get(labels[1])
			e.coo = append(e.coo, zone.Canonical(rr.(*dns.PTR).Ptr))
		}
		// Other properties (§4.4.3: custom ones under "ext") are not ours.
	}
	switch {
	case len(versions) == 0:
		return nil, fmt.Errorf("catalog %s: no version property (version.%s TXT \"%s\")", origin, origin, Version)
	case len(versions) > 1:
		return nil, fmt.Errorf("catalog %s: more than one version property", origin)
	case versions[0] != Version:
		return nil, fmt.Errorf("catalog %s: schema version %q, only %q is supported", origin, versions[0], Version)
	}

	ids := make([]string, 0, len(entries))
	for id := range entries {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e := entries[id]
		switch {
		case len(e.ptrs) == 0:
			continue // properties of a member that is not there
		case len(e.ptrs) > 1:
			c.Problems = append(c.Problems, fmt.Sprintf("member %s has %d PTR records; a member is exactly one (ignored)", id, len(e.ptrs)))
			continue
		}
		m := Member{Zone: e.ptrs[0], ID: id, Groups: e.groups}
		if _, ok := dns.IsDomainName(m.Zone); !ok || m.Zone == "." {
			c.Problems = append(c.Problems, fmt.Sprintf("member %s: %q is not a zone name (ignored)", id, m.Zone))
			continue
		}
		if len(e.coo) == 1 {
			m.COO = e.coo[0]
		} else if len(e.coo) > 1 {
			c.Problems = append(c.Problems, fmt.Sprintf("member %s: more than one coo property (ignored)", id))
		}
		if prev, dup := c.Members[m.Zone]; dup {
			// §4.1: a member listed twice is an error in the catalog; keep
			// the first by ID so the choice does not depend on order.
			c.Problems = append(c.Problems, fmt.Sprintf("zone %s listed twice (IDs %s and %s); using %s", m.Zone, prev.ID, id, prev.ID))
			continue
		}
		c.Members[m.Zone] = m
	}
	return c, nil
}

// MemberID is the unique label Build gives a member: a hash of its name,
// so the same zone keeps its ID across rebuilds and producers.
func MemberID(member string) string {
	sum := sha256.Sum256([]byte(zone.Canonical(member)))
	return hex.EncodeToString(sum[:8])
}

// Build writes a catalog zone listing members (producer side).
func Build(origin string, serial uint32, members []string) *zone.Zone {
	origin = zone.Canonical(origin)
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 0}
	}
	z := &zone.Zone{Origin: origin}
	z.Records = append(z.Records,
		// "invalid." as the NS and SOA names (§4.1): the catalog is not
		// meant to be queried, only transferred. Refresh is short since
		// consumers that miss a NOTIFY should still catch up soon.
		&dns.SOA{Hdr: hdr(origin, dns.TypeSOA), Ns: "invalid.", Mbox: "invalid.", Serial: serial,
			Refresh: 300, Retry: 60, Expire: 2419200, Minttl: 0},
		&dns.NS{Hdr: hdr(origin, dns.TypeNS), Ns: "invalid."},
		&dns.TXT{Hdr: hdr("version."+origin, dns.TypeTXT), Txt: []string{Version}},
	)
	sorted := append([]string(nil), members...)
	sort.Strings(sorted)
	for _, m := range sorted {
		m = zone.Canonical(m)
		z.Records = append(z.Records, &dns.PTR{Hdr: hdr(MemberID(m)+".zones."+origin, dns.TypePTR), Ptr: m})
	}
	return z
}
