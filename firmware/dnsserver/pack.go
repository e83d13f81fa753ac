package dnsserver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// packResponse writes the response r to query q into out (whose capacity
// must be at least maxMsg), keeping it within limit bytes: additional
// records that do not fit are left out silently; answer or authority
// records that do not fit set TC and leave only the header, the question
// and the OPT record, so the client retries over TCP for the whole answer.
func packResponse(out []byte, q *query, r *response, limit int, nsid string, udpSize uint16) []byte {
	w := out[:cap(out)]
	qlen := q.qend - 12
	copy(w[12:], q.msg[12:q.qend])
	off := q.qend
	room := limit - optLen(q, nsid)
	comp := make(map[string]int, 8)
	if qlen > 0 {
		// Names in the answer compress against the question as received;
		// an owner equal to the question name then carries its case.
		name := string(q.key[:q.keyLen])
		for i := 0; i < len(name) && name[i] != 0; i += int(name[i]) + 1 {
			comp[presentation(name[i:])] = 12 + i
		}
	}
	var counts [3]int
	tc := false
	secs := [3][]dns.RR{r.answer, r.ns, r.extra}
pack:
	for si, sec := range secs {
		for _, rr := range sec {
			end, err := dns.PackRR(rr, w, off, comp, true)
			if err != nil || end > room {
				if si == 2 {
					break pack // additional data is optional
				}
				tc = true
				off = q.qend
				counts = [3]int{}
				break pack
			}
			off = end
			counts[si]++
		}
	}
	hdr := w[:12]
	q.header(hdr, r.aa, tc, r.rcode)
	qd := 0
	if qlen > 0 {
		qd = 1
	}
	binary.BigEndian.PutUint16(hdr[4:], uint16(qd))
	binary.BigEndian.PutUint16(hdr[6:], uint16(counts[0]))
	binary.BigEndian.PutUint16(hdr[8:], uint16(counts[1]))
	ar := counts[2]
	out = w[:off]
	if q.edns {
		out = appendOPT(out, udpSize, r.rcode, q.do, nsidFor(q, nsid), q.cookieOut())
		ar++
	}
	binary.BigEndian.PutUint16(out[10:], uint16(ar))
	return out
}

func nsidFor(q *query, nsid string) string {
	if q.nsid {
		return nsid
	}
	return ""
}

// packError writes a response that carries only an rcode (and the
// question when it could be parsed).
func packError(out []byte, q *query, rcode int, nsid string, udpSize uint16) []byte {
	return packResponse(out, q, &response{rcode: rcode}, maxMsg, nsid, udpSize)
}

const maxMsg = 65535
