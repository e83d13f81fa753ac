package store

import (
	"bytes"
	"slices"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"
)

// syncSets makes the zone under prefix in the rrsets bucket hold exactly
// sets (sorted by key), writing only the RRsets that differ: on a big zone
// a small change then costs a few pages of SD writes, not a rewrite of the
// zone. When delta is non-nil it also collects the records removed and
// added, as IXFR needs. It reports whether anything changed.
func syncSets(b *bolt.Bucket, prefix []byte, sets []rrset, delta *Delta) (bool, error) {
	type op struct {
		key, val []byte // val nil: delete
	}
	var ops []op
	var removed, added []record

	// Merge-join the stored keys with the new ones. bbolt cursors must
	// not see writes, so the writes are collected and done afterwards.
	c := b.Cursor()
	next := func(k, v []byte) ([]byte, []byte) {
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return nil, nil
		}
		return k[len(prefix):], v
	}
	k, v := next(c.Seek(prefix))
	i := 0
	for k != nil || i < len(sets) {
		var cmp int
		switch {
		case k == nil:
			cmp = 1
		case i == len(sets):
			cmp = -1
		default:
			cmp = bytes.Compare(k, sets[i].key)
		}
		switch {
		case cmp < 0: // stored set no longer in the zone
			ops = append(ops, op{key: bytes.Clone(k)})
			if delta != nil {
				var err error
				if removed, err = decodeRecords(removed, k, v); err != nil {
					return false, err
				}
			}
			k, v = next(c.Next())
		case cmp > 0: // new set
			ops = append(ops, op{key: sets[i].key, val: sets[i].val})
			if delta != nil {
				var err error
				if added, err = decodeRecords(added, sets[i].key, sets[i].val); err != nil {
					return false, err
				}
			}
			i++
		default:
			if !bytes.Equal(v, sets[i].val) {
				ops = append(ops, op{key: sets[i].key, val: sets[i].val})
				if delta != nil {
					var err error
					if removed, added, err = diffSet(removed, added, k, v, sets[i].val); err != nil {
						return false, err
					}
				}
			}
			k, v = next(c.Next())
			i++
		}
	}

	for _, o := range ops {
		key := append(bytes.Clone(prefix), o.key...)
		var err error
		if o.val == nil {
			err = b.Delete(key)
		} else {
			err = b.Put(key, o.val)
		}
		if err != nil {
			return false, err
		}
	}
	if delta != nil {
		var err error
		if delta.Removed, err = soaFirst(removed); err != nil {
			return false, err
		}
		if delta.Added, err = soaFirst(added); err != nil {
			return false, err
		}
	}
	return len(ops) > 0, nil
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
