package zone

import (
	"fmt"

	"github.com/miekg/dns"
)

// packBufSize holds any single record: the largest owner name, the fixed
// header fields and the largest rdata.
const packBufSize = 255 + 10 + 65535

// scratchSize is the scratch space identify needs: one packed record and
// its key.
const scratchSize = ScratchSize

// ScratchSize is the scratch space Checker.Record needs.
const ScratchSize = 2 * packBufSize

// identity is what makes two records "the same record" for the purpose of
// merging duplicates (RFC 2181 §5: an RRset has no duplicate records):
// owner (case-insensitively), type, class and rdata. The TTL is not part
// of it, so a duplicate differing only in TTL is merged too and the first
// one read wins.
type identity struct {
	owner string // canonical wire form; a prefix of key
	key   string // owner + type + class + rdata
}

// rdata returns the record's data in wire form.
func (id identity) rdata() string { return id.key[len(id.owner)+4:] }

// identify packs rr and returns its identity. It also unpacks it again:
// the store keeps records in wire form, and a record that packs into
// bytes that do not unpack must be refused here, not found unreadable
// when the box boots. scratch must be scratchSize bytes. This runs for
// every record of every zone stored, so it allocates only the key.
func identify(rr dns.RR, scratch []byte) (identity, error) {
	buf, kb := scratch[:packBufSize], scratch[packBufSize:packBufSize]
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return identity{}, fmt.Errorf("cannot be encoded: %v", err)
	}
	if _, off, err := dns.UnpackRR(buf[:n], 0); err != nil || off != n {
		return identity{}, fmt.Errorf("incomplete record data")
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
	kb = appendLower(kb, buf[:h])
	kb = append(kb, buf[h:h+4]...) // type, class
	kb = append(kb, buf[h+10:n]...)
	key := string(kb)
	return identity{owner: key[:h], key: key}, nil
}

// dedup removes records identical to an earlier one, as NSD and Knot do
// when loading, keeping Pos parallel. Records that cannot be packed are
// kept so that Validate reports them.
func (z *Zone) dedup() {
	buf := make([]byte, scratchSize)
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
