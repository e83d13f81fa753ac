package store

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// ApplyDelta applies IXFR-style deltas to a stored zone, in order, in one
// transaction: each must start at the serial the previous one left
// (ErrSerialMismatch otherwise), may remove only records the zone has,
// and must end at its ToSerial; the result must pass zone.Validate (the
// error is then a zone.ErrorList). Nothing is stored unless all of that
// holds. The deltas are journaled as given and Info.Source becomes
// "transfer".
//
// The whole zone is decoded and validated for each call: validation is a
// property of the whole zone, and the snapshot the server needs is rebuilt
// whole anyway. Only the RRsets that changed are written.
func (s *Store) ApplyDelta(origin string, deltas []Delta) (Info, error) {
	origin = zone.Canonical(origin)
	if len(deltas) == 0 {
		return s.Info(origin)
	}
	var info Info
	err := s.db.Update(func(tx *bolt.Tx) error {
		cur, err := zoneInfo(tx, origin)
		if err != nil {
			return err
		}
		var rs []record
		err = forEachPrefixed(tx.Bucket(bucketSets), zonePrefix(origin), func(k, v []byte) error {
			rs, err = decodeRecords(rs, k, v)
			return err
		})
		if err != nil {
			return err
		}
		rs, err = applyDeltas(origin, cur.Serial, rs, deltas)
		if err != nil {
			return err
		}
		rrs, err := toRRs(rs)
		if err != nil {
			return err
		}
		z := &zone.Zone{Origin: origin, Records: rrs}
		if err := z.Validate(); err != nil {
			return err
		}
		info, err = s.writeTx(tx, origin, z.Serial(), sliceSets(buildSets(rs)), "transfer", deltas)
		return err
	})
	if errors.Is(err, errUnchanged) {
		err = nil
	}
	if err != nil {
		return Info{}, fmt.Errorf("store: apply delta to %s: %w", origin, err)
	}
	return info, nil
}

// applyDeltas applies deltas to the records rs of a zone at serial.
// Records are matched by identity (owner case-insensitively, type, class,
// rdata; not TTL). Adding a record the zone has replaces it, so a TTL
// change sent as add-only still takes effect.
func applyDeltas(origin string, serial uint32, rs []record, deltas []Delta) ([]record, error) {
	apex := make([]byte, 256)
	n, err := dns.PackDomainName(origin, apex, 0, nil, false)
	if err != nil {
		return nil, err
	}
	soaSet := string(setKey(nil, apex[:n], dns.TypeSOA))

	alive := make([]bool, len(rs))
	index := make(map[string]int, len(rs))
	for i, r := range rs {
		alive[i] = true
		index[r.identity()] = i
	}
	buf := make([]byte, packBufSize)
	for _, d := range deltas {
		if d.FromSerial != serial {
			return nil, fmt.Errorf("%w: delta %d->%d, zone is at %d", ErrSerialMismatch, d.FromSerial, d.ToSerial, serial)
		}
		for _, rr := range d.Removed {
			r, err := fromRR(rr, buf)
			if err != nil {
				return nil, err
			}
			i, ok := index[r.identity()]
			if !ok {
				return nil, fmt.Errorf("delta %d->%d removes a record the zone does not have: %v", d.FromSerial, d.ToSerial, rr)
			}
			alive[i] = false
			delete(index, r.identity())
		}
		newSerial, haveSOA := serial, false
		for _, rr := range d.Added {
			r, err := fromRR(rr, buf)
			if err != nil {
				return nil, err
			}
			if i, ok := index[r.identity()]; ok {
				rs[i] = r
			} else {
				index[r.identity()] = len(rs)
				rs = append(rs, r)
				alive = append(alive, true)
			}
			if soa, ok := rr.(*dns.SOA); ok && r.set == soaSet {
				newSerial, haveSOA = soa.Serial, true
			}
		}
		if !haveSOA || newSerial != d.ToSerial {
			return nil, fmt.Errorf("delta %d->%d does not add the SOA with serial %d", d.FromSerial, d.ToSerial, d.ToSerial)
		}
		serial = newSerial
	}
	out := rs[:0]
	for i, r := range rs {
		if alive[i] {
			out = append(out, r)
		}
	}
	return out, nil
}
