package store

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// ApplyDelta applies IXFR-style deltas to a stored zone, in order, in one
// transaction: each must start at the serial the previous one left
// (ErrSerialMismatch otherwise), may remove only records the zone has,
// and must end at its ToSerial; the result must validate as a whole zone
// (the error is then a zone.ErrorList). Nothing is stored unless all of
// that holds. The deltas are journaled as given and Info.Source becomes
// "transfer".
//
// Only the RRsets the deltas touch are read into memory and written:
// the zone as a whole is validated by streaming it from the store, with
// the changed RRsets in their place, through a zone.Checker — a delta to
// a zone of a million records costs memory for the delta, not the zone.
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
		prefix := zonePrefix(origin)
		b := tx.Bucket(bucketSets)
		chk, err := zone.NewChecker(origin)
		if err != nil {
			return err
		}
		ch, err := applyDeltas(b, prefix, chk, origin, cur.Serial, deltas)
		if err != nil {
			return err
		}
		if err := s.checkWith(tx, b, prefix, chk, ch); err != nil {
			return err
		}
		info = Info{Origin: origin, Serial: ch.serial, Records: cur.Records + ch.records, Source: "transfer",
			Updated: time.Unix(0, time.Now().UnixNano())} // as stored: no monotonic reading
		b.FillPercent = 0.9 // see writeTx
		var key []byte
		for _, k := range ch.keys {
			key = append(append(key[:0], prefix...), k...)
			rs := ch.sets[k]
			if len(rs) == 0 {
				err = b.Delete(key)
			} else {
				err = b.Put(key, encodeSet(nil, rs))
			}
			if err != nil {
				return err
			}
		}
		jb := tx.Bucket(bucketJrnl)
		for _, d := range deltas {
			if d.Time.IsZero() {
				d.Time = info.Updated
			}
			if err := s.appendJournal(jb, prefix, d); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketZones).Put([]byte(origin), encodeInfo(info))
	})
	if err != nil {
		return Info{}, fmt.Errorf("store: apply delta to %s: %w", origin, err)
	}
	return info, nil
}

// changes is what deltas do to a zone: the new content of each RRset
// they touch (empty: deleted), by key, and the keys sorted.
type changes struct {
	sets    map[string][]record
	keys    []string
	serial  uint32
	records int // added minus removed
}

// applyDeltas applies deltas to the stored zone under prefix at serial,
// reading only the RRsets they touch. Records are matched by identity
// (owner case-insensitively, type, class, rdata; not TTL). Adding a
// record the zone has replaces it, so a TTL change sent as add-only
// still takes effect. Added records are checked on their own by chk.
func applyDeltas(b *bolt.Bucket, prefix []byte, chk *zone.Checker, origin string, serial uint32, deltas []Delta) (*changes, error) {
	apex := make([]byte, 256)
	n, err := dns.PackDomainName(origin, apex, 0, nil, false)
	if err != nil {
		return nil, err
	}
	soaSet := string(setKey(nil, apex[:n], dns.TypeSOA))
	ch := &changes{sets: map[string][]record{}}
	var key []byte
	set := func(k string) ([]record, error) {
		if rs, ok := ch.sets[k]; ok {
			return rs, nil
		}
		key = append(append(key[:0], prefix...), k...)
		var rs []record
		if v := b.Get(key); v != nil {
			var err error
			if rs, err = decodeRecords(nil, []byte(k), v); err != nil {
				return nil, err
			}
		}
		ch.sets[k] = rs
		return rs, nil
	}
	find := func(rs []record, r record) int {
		id := r.identity()
		return slices.IndexFunc(rs, func(o record) bool { return o.identity() == id })
	}
	buf := make([]byte, packBufSize)
	scratch := make([]byte, zone.ScratchSize)
	added := 0
	for _, d := range deltas {
		if d.FromSerial != serial {
			return nil, fmt.Errorf("%w: delta %d->%d, zone is at %d", ErrSerialMismatch, d.FromSerial, d.ToSerial, serial)
		}
		for _, rr := range d.Removed {
			r, err := fromRR(rr, buf)
			if err != nil {
				return nil, err
			}
			rs, err := set(r.set)
			if err != nil {
				return nil, err
			}
			i := find(rs, r)
			if i < 0 {
				return nil, fmt.Errorf("delta %d->%d removes a record the zone does not have: %v", d.FromSerial, d.ToSerial, rr)
			}
			ch.sets[r.set] = slices.Delete(rs, i, i+1)
			ch.records--
		}
		newSerial, haveSOA := serial, false
		for _, rr := range d.Added {
			added++
			if _, _, ok := chk.Record(added, rr, zone.Position{}, scratch); !ok {
				continue // reported by chk.Err
			}
			r, err := fromRR(rr, buf)
			if err != nil {
				return nil, err
			}
			rs, err := set(r.set)
			if err != nil {
				return nil, err
			}
			if i := find(rs, r); i >= 0 {
				rs[i] = r
			} else {
				ch.sets[r.set] = append(rs, r)
				ch.records++
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
	ch.serial = serial
	for k := range ch.sets {
		ch.keys = append(ch.keys, k)
	}
	slices.Sort(ch.keys)
	return ch, nil
}

// checkWith validates the zone under prefix as it will be with ch
// applied: every record goes through chk.Place in key order, the stored
// RRsets straight from the store, the changed ones from ch in their
// place. Only the file's pages read so far are held (see dropMapped).
func (s *Store) checkWith(tx *bolt.Tx, b *bolt.Bucket, prefix []byte, chk *zone.Checker, ch *changes) error {
	i, read := 0, 0
	place := func(rs []record) {
		for _, r := range rs {
			chk.Place(i, zone.Position{}, []byte(r.owner), r.rtype())
			i++
		}
	}
	next := 0 // the next changed RRset in key order
	c := b.Cursor()
	for k, v := c.Seek(prefix); ; k, v = c.Next() {
		if k != nil && !bytes.HasPrefix(k, prefix) {
			k = nil
		}
		var sk string
		if k != nil {
			sk = string(k[len(prefix):])
		}
		// Changed RRsets that sort before this stored one (new RRsets).
		for next < len(ch.keys) && (k == nil || ch.keys[next] < sk) {
			place(ch.sets[ch.keys[next]])
			next++
		}
		if k == nil {
			break
		}
		if next < len(ch.keys) && ch.keys[next] == sk {
			place(ch.sets[sk]) // replaces the stored one
			next++
			continue
		}
		if read += len(k) + len(v); read > dropEvery {
			s.dropMapped(tx.Size())
			read = 0
		}
		t := setType(k)
		if err := decodeSetNamed(v, false, func(owner []byte, _ string, _ uint16, _ uint32, _ []byte) error {
			chk.Place(i, zone.Position{}, owner, t)
			i++
			return nil
		}); err != nil {
			return err
		}
	}
	return chk.Err()
}
