package store

import (
	"bytes"
	"slices"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"
)

// setIter hands out a zone's RRsets in key order, one per call, until ok
// is false. The set's key and value may be scratch that the next call
// overwrites.
type setIter func() (set rrset, ok bool, err error)

// sliceSets iterates over sets already built.
func sliceSets(sets []rrset) setIter {
	i := 0
	return func() (rrset, bool, error) {
		if i == len(sets) {
			return rrset{}, false, nil
		}
		i++
		return sets[i-1], true, nil
	}
}

// syncSets makes the zone under prefix in the rrsets bucket hold exactly
// the sets next hands out (in key order), writing only the RRsets that
// differ: on a big zone a small change then costs a few pages of SD
// writes, not a rewrite of the zone. When delta is non-nil it also
// collects the records removed and added, as IXFR needs. It reports
// whether anything changed, and how many records the zone now has.
// Only the RRsets written are kept (bbolt holds what it is given until
// the commit), so a big zone's unchanged RRsets cost nothing here.
func syncSets(b *bolt.Bucket, prefix []byte, next setIter, delta *Delta) (bool, int, error) {
	type op struct {
		key, val []byte // val nil: delete
	}
	var ops []op
	var removed, added []record
	var keep chunks
	count := 0
	var cur rrset
	have := false
	advance := func() error {
		var err error
		cur, have, err = next()
		count += cur.n
		return err
	}
	if err := advance(); err != nil {
		return false, 0, err
	}

	// Merge-join the stored keys with the new ones. bbolt cursors must
	// not see writes, so the writes are collected and done afterwards.
	c := b.Cursor()
	stored := func(k, v []byte) ([]byte, []byte) {
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return nil, nil
		}
		return k[len(prefix):], v
	}
	k, v := stored(c.Seek(prefix))
	for k != nil || have {
		var cmp int
		switch {
		case k == nil:
			cmp = 1
		case !have:
			cmp = -1
		default:
			cmp = bytes.Compare(k, cur.key)
		}
		switch {
		case cmp < 0: // stored set no longer in the zone
			ops = append(ops, op{key: bytes.Clone(k)})
			if delta != nil {
				var err error
				if removed, err = decodeRecords(removed, k, v); err != nil {
					return false, 0, err
				}
			}
			k, v = stored(c.Next())
		case cmp > 0: // new set
			ops = append(ops, op{key: keep.copy(cur.key), val: keep.copy(cur.val)})
			if delta != nil {
				var err error
				if added, err = decodeRecords(added, cur.key, cur.val); err != nil {
					return false, 0, err
				}
			}
			if err := advance(); err != nil {
				return false, 0, err
			}
		default:
			if !bytes.Equal(v, cur.val) {
				ops = append(ops, op{key: keep.copy(cur.key), val: keep.copy(cur.val)})
				if delta != nil {
					var err error
					if removed, added, err = diffSet(removed, added, k, v, cur.val); err != nil {
						return false, 0, err
					}
				}
			}
			k, v = stored(c.Next())
			if err := advance(); err != nil {
				return false, 0, err
			}
		}
	}

	var keys chunks
	for _, o := range ops {
		key := keys.copy(append(append(make([]byte, 0, 64), prefix...), o.key...))
		var err error
		if o.val == nil {
			err = b.Delete(key)
		} else {
			err = b.Put(key, o.val)
		}
		if err != nil {
			return false, 0, err
		}
	}
	if delta != nil {
		var err error
		if delta.Removed, err = soaFirst(removed); err != nil {
			return false, 0, err
		}
		if delta.Added, err = soaFirst(added); err != nil {
			return false, 0, err
		}
	}
	return len(ops) > 0, count, nil
}

// chunks keeps byte slices in large blocks: one allocation per 256 KiB
// rather than one per RRset written.
type chunks struct{ buf []byte }

func (c *chunks) copy(b []byte) []byte {
	if cap(c.buf)-len(c.buf) < len(b) {
		c.buf = make([]byte, 0, max(256<<10, len(b)))
	}
	start := len(c.buf)
	c.buf = append(c.buf, b...)
	return c.buf[start:len(c.buf):len(c.buf)]
}

// diffSet appends to removed the records of the old value that are not in
// the new one, and to added the reverse. A record counts as unchanged
// only if it is byte for byte the same, TTL and owner spelling included:
// IXFR has no "change TTL", only remove and add.
func diffSet(removed, added []record, key, oldVal, newVal []byte) ([]record, []record, error) {
	olds, err := decodeRecords(nil, key, oldVal)
	if err != nil {
		return nil, nil, err
	}
	news, err := decodeRecords(nil, key, newVal)
	if err != nil {
		return nil, nil, err
	}
	inOld := make(map[record]bool, len(olds))
	for _, o := range olds {
		inOld[o] = true
	}
	inNew := make(map[record]bool, len(news))
	for _, n := range news {
		inNew[n] = true
		if !inOld[n] {
			added = append(added, n)
		}
	}
	for _, o := range olds {
		if !inNew[o] {
			removed = append(removed, o)
		}
	}
	return removed, added, nil
}

// soaFirst converts records to dns.RRs with any SOA moved to the front,
// the order in which IXFR sends them.
func soaFirst(rs []record) ([]dns.RR, error) {
	slices.SortStableFunc(rs, func(a, b record) int {
		as, bs := a.rtype() == dns.TypeSOA, b.rtype() == dns.TypeSOA
		switch {
		case as && !bs:
			return -1
		case bs && !as:
			return 1
		}
		return 0
	})
	return toRRs(rs)
}
