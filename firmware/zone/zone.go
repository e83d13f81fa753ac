// Package zone is the in-memory form of one DNS zone as it travels between
// the importers (master files, transfers, the API), the store and the
// snapshot builder: an origin plus its resource records, validated as a
// whole before anything else sees it.
package zone

import (
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Position says where a record came from, so validation errors can name
// the file and line an operator has to fix.
type Position struct {
	File string
	Line int
}

func (p Position) String() string {
	if p.File == "" {
		return ""
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Zone is one zone's content. Origin is a canonical (lower-case, fully
// qualified) name. Records holds every RR of the zone, SOA included; Pos,
// when non-nil, is parallel to Records and says where each was read.
type Zone struct {
	Origin  string
	Records []dns.RR
	Pos     []Position
}

// SOA returns the zone's apex SOA record, or nil when there is none.
func (z *Zone) SOA() *dns.SOA {
	for _, rr := range z.Records {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, z.Origin) {
			return soa
		}
	}
	return nil
}

// Serial returns the SOA serial, or 0 when the zone has no SOA.
func (z *Zone) Serial() uint32 {
	if soa := z.SOA(); soa != nil {
		return soa.Serial
	}
	return 0
}

// Canonical returns name in the canonical form zones are keyed by:
// lower case and fully qualified, with escapes as miekg/dns prints them
// ("\065BC" and "ABC" both become "abc."; a raw control byte becomes
// "\DDD"), so that one zone has exactly one key. A name that is not a
// valid domain name is only lower-cased and qualified.
func Canonical(name string) string {
	name = dns.Fqdn(name)
	var buf [256]byte
	if n, err := dns.PackDomainName(name, buf[:], 0, nil, false); err == nil {
		if c, _, err := dns.UnpackDomainName(appendLower(nil, buf[:n]), 0); err == nil {
			return c
		}
	}
	return strings.ToLower(name)
}
