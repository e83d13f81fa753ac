package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"
)

// The journal keeps each zone's recent deltas so the box can answer IXFR
// (from other Shoestring nodes) without a full transfer. Entries are keyed
// by a big-endian sequence number, so they sort oldest first, and always
// form one chain ending at the zone's current serial: every write that
// cannot extend the chain (content changed under the same serial, a delta
// too big to keep) empties the journal instead, and readers fall back to
// AXFR.
//
// Entry value: from(4) to(4) time(8, Unix ns) then the removed and the
// added records, each as count(4) followed by the records in uncompressed
// wire form.

// Journal returns the deltas that lead from fromSerial to the zone's
// current serial, oldest first: empty if fromSerial is current,
// ErrJournalGap if the journal does not reach back that far.
func (s *Store) Journal(origin string, fromSerial uint32) ([]Delta, error) {
	var out []Delta
	err := s.db.View(func(tx *bolt.Tx) error {
		info, err := zoneInfo(tx, origin)
		if err != nil {
			return err
		}
		if info.Serial == fromSerial {
			return nil
		}
		// Walk back from the newest entry while the chain holds. The
		// first entry found that starts at fromSerial gives the shortest
		// chain should serials have repeated.
		prefix := zonePrefix(info.Origin)
		var chain [][]byte
		want := info.Serial
		c := tx.Bucket(bucketJrnl).Cursor()
		for k, v := lastPrefixed(c, prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			from, to, ok := deltaSerials(v)
			if !ok || to != want {
				break
			}
			chain = append(chain, v)
			if from == fromSerial {
				out = make([]Delta, len(chain))
				for i, v := range chain {
					d, err := decodeDelta(bytes.Clone(v))
					if err != nil {
						return err
					}
					out[len(chain)-1-i] = d
				}
				return nil
			}
			want = from
		}
		return ErrJournalGap
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []Delta{}
	}
	return out, nil
}

// lastPrefixed positions c on the last key with prefix (or wherever, if
// there is none: the caller checks the prefix).
func lastPrefixed(c *bolt.Cursor, prefix []byte) ([]byte, []byte) {
	// The zone's keys end before "<origin> 0x01", the next prefix up.
	end := bytes.Clone(prefix)
	end[len(end)-1] = 1
	if k, _ := c.Seek(end); k == nil {
		return c.Last()
	}
	return c.Prev()
}

// appendJournal adds d to the journal of the zone under prefix and trims
// it to the limits, oldest entries first.
func (s *Store) appendJournal(jb *bolt.Bucket, prefix []byte, d Delta) error {
	val, err := encodeDelta(d)
	if err != nil {
		return err
	}
	if len(val) > s.opts.JournalMaxBytes {
		// Keeping older entries without this one would break the chain.
		return deletePrefixed(jb, prefix)
	}

	// Sequence numbers continue from the newest entry; an empty journal
	// starts again at 1, which is fine as the chain starts afresh.
	var seq uint64 = 1
	n, size := 1, len(val)
	var drop [][]byte
	c := jb.Cursor()
	for k, v := lastPrefixed(c, prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		if n == 1 {
			seq = binary.BigEndian.Uint64(k[len(prefix):]) + 1
		}
		n++
		size += len(v)
		if n > s.opts.JournalLimit || size > s.opts.JournalMaxBytes {
			drop = append(drop, bytes.Clone(k))
		}
	}
	for _, k := range drop {
		if err := jb.Delete(k); err != nil {
			return err
		}
	}
	return jb.Put(binary.BigEndian.AppendUint64(bytes.Clone(prefix), seq), val)
}

func encodeDelta(d Delta) ([]byte, error) {
	b := make([]byte, 0, 64)
	b = binary.BigEndian.AppendUint32(b, d.FromSerial)
	b = binary.BigEndian.AppendUint32(b, d.ToSerial)
	b = binary.BigEndian.AppendUint64(b, uint64(d.Time.UnixNano()))
	buf := make([]byte, packBufSize)
	for _, rrs := range [][]dns.RR{d.Removed, d.Added} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(rrs)))
		for _, rr := range rrs {
			if rr == nil {
				return nil, errors.New("store: empty record in delta")
			}
			n, err := dns.PackRR(rr, buf, 0, nil, false)
			if err != nil {
				return nil, fmt.Errorf("store: delta record %s: %w", rr.Header().Name, err)
			}
			b = append(b, buf[:n]...)
		}
	}
	return b, nil
}

var errCorruptDelta = errors.New("store: corrupt journal entry")

func deltaSerials(v []byte) (from, to uint32, ok bool) {
	if len(v) < 8 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:]), true
}

// decodeDelta decodes a journal entry; v must not be bbolt's memory.
func decodeDelta(v []byte) (Delta, error) {
	if len(v) < 16 {
		return Delta{}, errCorruptDelta
	}
	d := Delta{
		FromSerial: binary.BigEndian.Uint32(v),
		ToSerial:   binary.BigEndian.Uint32(v[4:]),
		Time:       time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))),
	}
	off := 16
	for _, list := range []*[]dns.RR{&d.Removed, &d.Added} {
		if off+4 > len(v) {
			return Delta{}, errCorruptDelta
		}
		n := int(binary.BigEndian.Uint32(v[off:]))
		off += 4
		if n > len(v) { // each record takes at least one byte
			return Delta{}, errCorruptDelta
		}
		*list = make([]dns.RR, 0, n)
		for range n {
			rr, next, err := dns.UnpackRR(v, off)
			if err != nil {
				return Delta{}, fmt.Errorf("%w: %v", errCorruptDelta, err)
			}
			*list = append(*list, rr)
			off = next
		}
	}
	if off != len(v) {
		return Delta{}, errCorruptDelta
	}
	return d, nil
}
