package zone

import (
	"fmt"

	"github.com/miekg/dns"
)

// packBufSize holds any single record: the largest owner name, the fixed
// header fields and the largest rdata.
const packBufSize = 255 + 10 + 65535

// identity is what makes two records "the same record" for the purpose of
// merging duplicates (RFC 2181 §5: an RRset has no duplicate records):
// owner (case-insensitively), type, class and rdata. The TTL is not part
// of it, so a duplicate differing only in TTL is merged too and the first
// one read wins.
type identity struct {
	owner string // canonical wire form
	key   string // owner + type + class + rdata
	rdlen int
}

// identify packs rr (which also proves it can be sent on the wire) and
// returns its identity. buf must be packBufSize bytes.
func identify(rr dns.RR, buf []byte) (identity, error) {
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return identity{}, fmt.Errorf("cannot be encoded: %v", err)
	}
	// Packed layout: owner, type(2), class(2), ttl(4), rdlength(2), rdata;
	// without compression the owner is a plain label sequence.
	h := 0
	for h < n && buf[h] != 0 {
		h += 1 + int(buf[h])
	}
	h++
	if n < h+10 {
		return identity{}, fmt.Errorf("cannot be encoded: short record")
	}
	owner := lowerWire(buf[:h])
	key := make([]byte, 0, n-6)
	key = append(key, owner...)
	key = append(key, buf[h:h+4]...) // type, class
	key = append(key, buf[h+10:n]...)
	return identity{owner: owner, key: string(key), rdlen: n - h - 10}, nil
}

// dedup removes records identical to an earlier one, as NSD and Knot do
// when loading, keeping Pos parallel. Records that cannot be packed are
// kept so that Validate reports them.
func (z *Zone) dedup() {
	buf := make([]byte, packBufSize)
	seen := make(map[string]struct{}, len(z.Records))
	out := 0
	for i, rr := range z.Records {
		if rr != nil {
			if id, err := identify(rr, buf); err == nil {
				if _, dup := seen[id.key]; dup {
					continue
				}
				seen[id.key] = struct{}{}
			}
		}
		z.Records[out] = rr
		if z.Pos != nil {
			z.Pos[out] = z.Pos[i]
		}
		out++
	}
	clear(z.Records[out:])
	z.Records = z.Records[:out]
	if z.Pos != nil {
		z.Pos = z.Pos[:out]
	}
}
