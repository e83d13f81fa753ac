package dnsserver

import (
	"encoding/binary"
	"io"
	"net/netip"

	"github.com/miekg/dns"
)

// TransferHandler takes the messages that are not answered from
// snapshots: NOTIFY (RFC 1996) and zone transfers (AXFR, RFC 5936; IXFR,
// RFC 1995). It gets the raw message, so it can check TSIG itself.
type TransferHandler interface {
	// Notify returns the reply to a NOTIFY, or nil to send none.
	Notify(msg []byte, from netip.AddrPort) []byte
	// Transfer serves an AXFR or IXFR request received over TCP, writing
	// each response message to w (the server adds the TCP length
	// prefix); it writes a REFUSED or NOTAUTH message itself when the
	// client is not allowed.
	Transfer(msg []byte, from netip.AddrPort, w io.Writer) error
}

// WithExpired returns a copy of the snapshot that answers SERVFAIL (or
// back to normal): a secondary zone past its SOA expire must not be served
// from stale data (RFC 1034 §4.3.5).
func (z *Zone) WithExpired(expired bool) *Zone {
	c := *z
	c.expired = expired
	return &c
}

// Expired reports whether the zone answers SERVFAIL for being expired.
func (z *Zone) Expired() bool { return z.expired }

// SOA returns a copy of the zone's SOA record as stored (the refresh,
// retry and expire timers drive a secondary; outbound IXFR and NOTIFY
// carry it).
func (z *Zone) SOA() *dns.SOA {
	if s := z.apexN.set(dns.TypeSOA); s != nil && s.n > 0 {
		if soa, ok := z.records(s, z.origin, false)[0].(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}

// notify hands a NOTIFY to the transfer handler; without one it is NOTIMP.
func (s *Server) notify(q *query, out []byte, from netip.AddrPort) []byte {
	if s.cfg.Transfers == nil {
		return packError(out, q, dns.RcodeNotImplemented, s.cfg.NSID, uint16(s.cfg.MaxUDPSize))
	}
	r := s.cfg.Transfers.Notify(q.msg, from)
	if r == nil {
		return nil
	}
	return append(out[:0], r...)
}

// isTransfer reports whether q asks for a zone transfer.
func (q *query) isTransfer() bool {
	return q.opcode == dns.OpcodeQuery && !q.formerr && (q.qtype == dns.TypeAXFR || q.qtype == dns.TypeIXFR)
}

// lengthPrefixed writes each message with its two-byte TCP length.
type lengthPrefixed struct{ w io.Writer }

func (l lengthPrefixed) Write(msg []byte) (int, error) {
	var lb [2]byte
	binary.BigEndian.PutUint16(lb[:], uint16(len(msg)))
	if _, err := l.w.Write(lb[:]); err != nil {
		return 0, err
	}
	return l.w.Write(msg)
}

// ExpiredZones lists the origins of the served zones marked expired. It
// reads the current table only: health checks call it every round.
func (s *Server) ExpiredZones() []string {
	var out []string
	for _, z := range s.table.Load().zones {
		if z.expired {
			out = append(out, z.origin)
		}
	}
	return out
}
