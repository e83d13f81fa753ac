package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// Zone data is kept as one value per RRset, in DNS wire form: decoding
// wire data is several times faster than parsing text, which is what
// makes boot loading fast, and one value per RRset lets a change rewrite
// only the RRsets that changed.
//
// Key: the owner name in canonical wire form (lower-cased) with its labels
// in reverse order, so a zone's keys sort parent before child like a zone
// file, followed by the type (2 bytes, big-endian). Each label is followed
// by a 0x00 byte; 0x00 and 0x01 inside labels are escaped as 0x01 0x01
// and 0x01 0x02 so that the encoding stays unambiguous.
//
// Value: the RRset's records, each as
//
//	flag(1) [owner] class(2) ttl(4) rdlength(2) rdata
//
// where flag 1 means the owner name (wire form, case as written) follows
// and flag 0 means "same owner as the previous record". Owners are kept
// per record because a zone file may spell one name in several cases and
// we keep record data as it was given; in practice every record after the
// first has flag 0 and the name is decoded once per RRset.

// record is one resource record in the store's own terms.
type record struct {
	set   string // RRset key: name key + type
	owner string // owner in wire form, case as written
	class uint16
	ttl   uint32
	rdata string
}

func (r record) rtype() uint16 { return binary.BigEndian.Uint16([]byte(r.set[len(r.set)-2:])) }

// identity is what makes two records the same record (RFC 2181 §5):
// owner (case-insensitively), type, class and rdata, not the TTL.
func (r record) identity() string {
	var c [2]byte
	binary.BigEndian.PutUint16(c[:], r.class)
	return r.set + string(c[:]) + r.rdata
}

// packBufSize holds any single record.
const packBufSize = 255 + 10 + 65535

// fromRR packs rr into a record. buf is scratch of packBufSize bytes.
func fromRR(rr dns.RR, buf []byte) (record, error) {
	if rr == nil {
		return record{}, errors.New("empty record")
	}
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return record{}, fmt.Errorf("%s: %v", rr.Header().Name, err)
	}
	h := 0
	for h < n && buf[h] != 0 {
		h += 1 + int(buf[h])
	}
	h++
	if n < h+10 {
		return record{}, fmt.Errorf("%s: short record", rr.Header().Name)
	}
	owner := buf[:h]
	return record{
		set:   string(setKey(nil, owner, binary.BigEndian.Uint16(buf[h:]))),
		owner: string(owner),
		class: binary.BigEndian.Uint16(buf[h+2:]),
		ttl:   binary.BigEndian.Uint32(buf[h+4:]),
		rdata: string(buf[h+10 : n]),
	}, nil
}

// setKey appends the key of the RRset of type t at the wire-form name.
func setKey(dst, name []byte, t uint16) []byte {
	return binary.BigEndian.AppendUint16(zone.AppendOrderKey(dst, name), t)
}

// encodeSet appends the value for one RRset's records.
func encodeSet(dst []byte, rs []record) []byte {
	if dst == nil {
		n := 0
		for _, r := range rs {
			n += 1 + len(r.owner) + 8 + len(r.rdata)
		}
		dst = make([]byte, 0, n)
	}
	prev := ""
	for i, r := range rs {
		if i > 0 && r.owner == prev {
			dst = append(dst, 0)
		} else {
			dst = append(dst, 1)
			dst = append(dst, r.owner...)
		}
		prev = r.owner
		dst = binary.BigEndian.AppendUint16(dst, r.class)
		dst = binary.BigEndian.AppendUint32(dst, r.ttl)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(r.rdata)))
		dst = append(dst, r.rdata...)
	}
	return dst
}

var errCorrupt = errors.New("store: corrupt RRset value")

// decodeSet calls fn for each record of a stored RRset value, with the
// owner as wire bytes and as text (the text is decoded once per distinct
// owner) and the rdata. The slices alias val.
func decodeSet(val []byte, fn func(owner []byte, name string, class uint16, ttl uint32, rdata []byte) error) error {
	return decodeSetNamed(val, true, fn)
}

// decodeSetNamed is decodeSet that decodes the owner's text (one string
// per RRset) only when named is set; without it, name is "".
func decodeSetNamed(val []byte, named bool, fn func(owner []byte, name string, class uint16, ttl uint32, rdata []byte) error) error {
	var owner []byte
	name := ""
	for off := 0; off < len(val); {
		flag := val[off]
		off++
		if flag == 1 {
			start := off
			for off < len(val) && val[off] != 0 {
				off += 1 + int(val[off])
			}
			off++
			if off > len(val) {
				return errCorrupt
			}
			if !bytes.Equal(owner, val[start:off]) {
				owner = val[start:off]
				if named {
					n, _, err := dns.UnpackDomainName(owner, 0)
					if err != nil {
						return errCorrupt
					}
					name = n
				}
			}
		} else if flag != 0 || owner == nil {
			return errCorrupt
		}
		if off+8 > len(val) {
			return errCorrupt
		}
		class := binary.BigEndian.Uint16(val[off:])
		ttl := binary.BigEndian.Uint32(val[off+2:])
		rdlen := int(binary.BigEndian.Uint16(val[off+6:]))
		off += 8
		if off+rdlen > len(val) {
			return errCorrupt
		}
		if err := fn(owner, name, class, ttl, val[off:off+rdlen]); err != nil {
			return err
		}
		off += rdlen
	}
	return nil
}

// setType returns the type from an RRset key.
func setType(key []byte) uint16 { return binary.BigEndian.Uint16(key[len(key)-2:]) }

// decodeRRs appends the records of a stored RRset to rrs as dns.RR. val
// must not be bbolt's memory: see arena.
func decodeRRs(rrs []dns.RR, key, val []byte) ([]dns.RR, error) {
	t := setType(key)
	err := decodeSet(val, func(_ []byte, name string, class uint16, ttl uint32, rdata []byte) error {
		h := dns.RR_Header{Name: name, Rrtype: t, Class: class, Ttl: ttl, Rdlength: uint16(len(rdata))}
		rr, _, err := dns.UnpackRRWithHeader(h, rdata, 0)
		if err != nil {
			return fmt.Errorf("store: %s %s: %w", name, dns.Type(t), err)
		}
		rrs = append(rrs, rr)
		return nil
	})
	return rrs, err
}

// decodeRecords appends the records of a stored RRset to rs.
func decodeRecords(rs []record, key, val []byte) ([]record, error) {
	set := string(key)
	err := decodeSet(val, func(owner []byte, _ string, class uint16, ttl uint32, rdata []byte) error {
		rs = append(rs, record{set: set, owner: string(owner), class: class, ttl: ttl, rdata: string(rdata)})
		return nil
	})
	return rs, err
}

// toRR converts a record back to a dns.RR.
func (r record) toRR() (dns.RR, error) {
	name, _, err := dns.UnpackDomainName([]byte(r.owner), 0)
	if err != nil {
		return nil, err
	}
	h := dns.RR_Header{Name: name, Rrtype: r.rtype(), Class: r.class, Ttl: r.ttl, Rdlength: uint16(len(r.rdata))}
	rr, _, err := dns.UnpackRRWithHeader(h, []byte(r.rdata), 0)
	return rr, err
}

// toRRs converts records to dns.RRs.
func toRRs(rs []record) ([]dns.RR, error) {
	out := make([]dns.RR, 0, len(rs))
	for _, r := range rs {
		rr, err := r.toRR()
		if err != nil {
			return nil, err
		}
		out = append(out, rr)
	}
	return out, nil
}

// rrset is one RRset ready to be stored.
type rrset struct {
	key []byte
	val []byte
	n   int // records
}

// buildSets groups records into RRsets sorted by key, dropping records
// identical to an earlier one (first one wins) and keeping the given order
// within each RRset, so that the same zone always encodes to the same
// bytes and an unchanged RRset is recognised as unchanged.
func buildSets(rs []record) []rrset {
	idx := make([]int, len(rs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(rs[a].set, rs[b].set) })
	var sets []rrset
	var group []record
	var seen map[string]struct{}
	flush := func() {
		if len(group) > 0 {
			sets = append(sets, rrset{key: []byte(group[0].set), val: encodeSet(nil, group), n: len(group)})
		}
		group = group[:0]
		clear(seen)
	}
	for _, i := range idx {
		r := rs[i]
		if len(group) > 0 && group[0].set != r.set {
			flush()
		}
		if isDup(group, &seen, r) {
			continue
		}
		group = append(group, r)
	}
	flush()
	return sets
}

// isDup reports whether r is already in group (and remembers it if not);
// small groups are scanned, large ones indexed.
func isDup(group []record, seen *map[string]struct{}, r record) bool {
	const scan = 16
	if len(group) < scan {
		for _, g := range group {
			if g.class == r.class && g.rdata == r.rdata {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[string]struct{})
	}
	if len(*seen) == 0 {
		for _, g := range group {
			(*seen)[g.identity()] = struct{}{}
		}
	}
	id := r.identity()
	if _, ok := (*seen)[id]; ok {
		return true
	}
	(*seen)[id] = struct{}{}
	return false
}

// arena copies values out of bbolt's memory map before they are decoded.
// miekg/dns copies what it unpacks today, but a record that kept a slice
// of the map would fault once the transaction ended or the file was
// remapped; one copy into a block that is never reused rules that out for
// the price of a memmove.
type arena struct{ buf []byte }

func (a *arena) copy(v []byte) []byte {
	if cap(a.buf)-len(a.buf) < len(v) {
		a.buf = make([]byte, 0, max(64<<10, len(v)))
	}
	start := len(a.buf)
	a.buf = append(a.buf, v...)
	return a.buf[start:len(a.buf):len(a.buf)]
}
