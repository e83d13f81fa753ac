package xfr

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/store"
)

// Kind is what a transfer turned out to be.
type Kind string

// Kinds of transfer results.
const (
	KindAXFR     Kind = "AXFR"
	KindIXFR     Kind = "IXFR"
	KindUpToDate Kind = "up-to-date" // IXFR answered with our own serial or older
)

// stream interprets the records of an AXFR or IXFR response in order
// (RFC 5936 §2.2, RFC 1995 §4): an AXFR is the zone between two copies of
// its SOA; an IXFR is the new SOA, then for each change the old SOA, the
// records removed, the new SOA, the records added, and the new SOA again —
// unless the primary answers an IXFR the AXFR way, which shows in the
// second record not being an SOA.
type stream struct {
	origin string
	qtype  uint16
	have   uint32 // IXFR: the serial we asked from

	state   int
	soa     *dns.SOA // the primary's current SOA, the first record
	kind    Kind
	records []dns.RR // AXFR: the zone, its SOA first, no trailing SOA
	sink    Sink     // AXFR: where the zone goes instead of records
	count   int      // AXFR: records of the zone
	deltas  []store.Delta
	cur     *store.Delta
	done    bool
}

const (
	stFirst  = iota // expecting the first SOA
	stSecond        // IXFR: the second record tells IXFR from AXFR
	stAXFR          // zone records until the SOA comes back
	stDel           // IXFR: records removed
	stAdd           // IXFR: records added
)

func newStream(origin string, qtype uint16, have uint32) *stream {
	return &stream{origin: origin, qtype: qtype, have: have}
}

func (s *stream) apexSOA(rr dns.RR) *dns.SOA {
	soa, ok := rr.(*dns.SOA)
	if ok && strings.EqualFold(soa.Hdr.Name, s.origin) {
		return soa
	}
	return nil
}

// add takes the next record of the response.
func (s *stream) add(rr dns.RR) error {
	if s.done {
		return fmt.Errorf("records after the final SOA (%s)", rr.Header().Name)
	}
	soa := s.apexSOA(rr)
	switch s.state {
	case stFirst:
		if soa == nil {
			return fmt.Errorf("the response does not start with the SOA of %s but %s %s", s.origin, rr.Header().Name, dns.TypeToString[rr.Header().Rrtype])
		}
		s.soa = soa
		if s.qtype == dns.TypeAXFR {
			s.kind, s.state = KindAXFR, stAXFR
			s.zoneRecord(rr)
		} else {
			s.state = stSecond
		}
	case stSecond:
		if soa != nil {
			if soa.Serial == s.soa.Serial {
				return fmt.Errorf("IXFR response repeats the SOA %d with nothing between", soa.Serial)
			}
			s.kind, s.state = KindIXFR, stDel
			s.cur = &store.Delta{FromSerial: soa.Serial, Removed: []dns.RR{rr}}
			return nil
		}
		// An AXFR-style answer to our IXFR (RFC 1995 §4): the whole zone.
		s.kind, s.state = KindAXFR, stAXFR
		s.zoneRecord(s.soa)
		s.zoneRecord(rr)
	case stAXFR:
		if soa != nil {
			if soa.Serial != s.soa.Serial {
				return fmt.Errorf("the closing SOA has serial %d, the opening one %d", soa.Serial, s.soa.Serial)
			}
			s.done = true
			return nil
		}
		s.zoneRecord(rr)
	case stDel:
		if soa != nil {
			s.cur.ToSerial = soa.Serial
			s.cur.Added = []dns.RR{rr}
			s.state = stAdd
			return nil
		}
		s.cur.Removed = append(s.cur.Removed, rr)
	case stAdd:
		if soa == nil {
			s.cur.Added = append(s.cur.Added, rr)
			return nil
		}
		s.deltas = append(s.deltas, *s.cur)
		if soa.Serial == s.soa.Serial && s.cur.ToSerial == s.soa.Serial {
			s.cur, s.done = nil, true
			return nil
		}
		if soa.Serial != s.cur.ToSerial {
			return fmt.Errorf("IXFR change from %d does not follow the change to %d", soa.Serial, s.cur.ToSerial)
		}
		s.cur = &store.Delta{FromSerial: soa.Serial, Removed: []dns.RR{rr}}
		s.state = stDel
	}
	return nil
}

// zoneRecord takes one record of an AXFR.
func (s *stream) zoneRecord(rr dns.RR) {
	s.count++
	if s.sink != nil {
		s.sink.Add(rr)
		return
	}
	s.records = append(s.records, rr)
}

// endOfMessage is called after each message: an IXFR answered with a
// lone SOA that is not newer than ours means we are up to date (RFC 1995
// §2), and nothing more will come.
func (s *stream) endOfMessage() {
	if s.state == stSecond && !SerialNewer(s.soa.Serial, s.have) {
		s.kind, s.done = KindUpToDate, true
	}
}
