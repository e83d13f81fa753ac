package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// errUnchanged rolls back a write transaction that would change nothing:
// bbolt writes a new meta page on every commit, and an SD card has a
// finite number of writes in it.
var errUnchanged = errors.New("unchanged")

// PutZone is PutZoneFrom with no source.
func (s *Store) PutZone(z *zone.Zone) (Info, error) { return s.PutZoneFrom(z, "") }

// PutZoneFrom validates z and replaces the stored zone with it in one
// transaction, writing only the RRsets that changed. If the zone existed
// with another serial, the change is added to the journal; if its content
// changed but its serial did not, the journal is emptied (its deltas
// would lead to content the zone no longer has). source ("file", "api",
// "transfer") is kept in Info. Validation errors are a zone.ErrorList.
func (s *Store) PutZoneFrom(z *zone.Zone, source string) (Info, error) {
	if err := z.Validate(); err != nil {
		return Info{}, err
	}
	rs := make([]record, 0, len(z.Records))
	buf := make([]byte, packBufSize)
	for _, rr := range z.Records {
		r, err := fromRR(rr, buf)
		if err != nil {
			return Info{}, fmt.Errorf("store: %w", err)
		}
		rs = append(rs, r)
	}
	return s.write(z.Origin, z.Serial(), sliceSets(buildSets(rs)), source, nil)
}

// write stores sets as the content of origin and updates its info and
// journal; see PutZoneFrom. If deltas is nil the journal entry is computed
// from the difference; otherwise deltas are journaled as given.
func (s *Store) write(origin string, serial uint32, sets setIter, source string, deltas []Delta) (Info, error) {
	var info Info
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		info, err = s.writeTx(tx, origin, serial, sets, source, deltas)
		return err
	})
	if errors.Is(err, errUnchanged) {
		err = nil
	}
	if err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", origin, err)
	}
	return info, nil
}

// writeTx is write inside a transaction. It returns errUnchanged, with
// the stored info, when the zone is stored already exactly so.
func (s *Store) writeTx(tx *bolt.Tx, origin string, serial uint32, sets setIter, source string, deltas []Delta) (Info, error) {
	info := Info{Origin: origin, Serial: serial, Source: source}
	zones := tx.Bucket(bucketZones)
	var old Info
	oldVal := zones.Get([]byte(origin))
	existed := oldVal != nil
	if existed {
		var err error
		if old, err = decodeInfo(origin, oldVal); err != nil {
			return Info{}, err
		}
	}
	prefix := zonePrefix(origin)

	var delta *Delta
	if existed && old.Serial != serial && deltas == nil {
		delta = &Delta{FromSerial: old.Serial, ToSerial: serial}
	}
	setsB := tx.Bucket(bucketSets)
	// bbolt splits pages it writes at FillPercent; the default (half
	// full) suits random inserts, but RRsets arrive in key order and are
	// read far more than written, so fuller pages mean a smaller file and
	// less to read at boot.
	setsB.FillPercent = 0.9
	changed, count, err := syncSets(setsB, prefix, sets, delta)
	if err != nil {
		return Info{}, err
	}
	info.Records = count
	if existed && !changed && old.Source == source {
		return old, errUnchanged
	}
	info.Updated = old.Updated
	if changed || !existed {
		// As stored: no monotonic reading, nanoseconds since 1970.
		info.Updated = time.Unix(0, time.Now().UnixNano())
	}

	jb := tx.Bucket(bucketJrnl)
	switch {
	case deltas != nil:
		for _, d := range deltas {
			if d.Time.IsZero() {
				d.Time = info.Updated
			}
			if err := s.appendJournal(jb, prefix, d); err != nil {
				return Info{}, err
			}
		}
	case delta != nil:
		delta.Time = info.Updated
		if err := s.appendJournal(jb, prefix, *delta); err != nil {
			return Info{}, err
		}
	case changed:
		// New content under the same serial: the journal's deltas now
		// lead to content the zone no longer has. A new zone, too, must
		// not inherit a journal (none should be left, but be sure).
		if err := deletePrefixed(jb, prefix); err != nil {
			return Info{}, err
		}
	}
	return info, zones.Put([]byte(origin), encodeInfo(info))
}

// DeleteZone removes a zone and its journal; ErrNotFound if absent.
func (s *Store) DeleteZone(origin string) error {
	origin = zone.Canonical(origin)
	return s.db.Update(func(tx *bolt.Tx) error {
		zones := tx.Bucket(bucketZones)
		if zones.Get([]byte(origin)) == nil {
			return ErrNotFound
		}
		prefix := zonePrefix(origin)
		if err := deletePrefixed(tx.Bucket(bucketSets), prefix); err != nil {
			return err
		}
		if err := deletePrefixed(tx.Bucket(bucketJrnl), prefix); err != nil {
			return err
		}
		return zones.Delete([]byte(origin))
	})
}

// Zone returns a stored zone (records in canonical name order, no
// positions); ErrNotFound if absent.
func (s *Store) Zone(origin string) (*zone.Zone, error) {
	var z *zone.Zone
	err := s.db.View(func(tx *bolt.Tx) error {
		info, err := zoneInfo(tx, origin)
		if err != nil {
			return err
		}
		z, err = loadZone(tx, info, &arena{})
		return err
	})
	return z, err
}

// Info returns a stored zone's info; ErrNotFound if absent.
func (s *Store) Info(origin string) (Info, error) {
	var info Info
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		info, err = zoneInfo(tx, origin)
		return err
	})
	return info, err
}

// List returns every zone's info, sorted by origin.
func (s *Store) List() ([]Info, error) {
	var out []Info
	err := s.db.View(func(tx *bolt.Tx) error {
		return eachZone(tx, func(info Info) error {
			out = append(out, info)
			return nil
		})
	})
	return out, err
}

// ForEachZone calls fn for every stored zone, decoded, in origin order,
// all from one consistent read (for tools and tests: the boot load reads
// each zone with ReadZone, without decoding it). fn runs inside a read
// transaction and must not write to the store (a write that grows the
// file would wait for this read to finish).
func (s *Store) ForEachZone(fn func(*zone.Zone, Info) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		a := &arena{}
		return eachZone(tx, func(info Info) error {
			z, err := loadZone(tx, info, a)
			if err != nil {
				return err
			}
			return fn(z, info)
		})
	})
}

// ReadZone reads a stored zone record by record, in the store's order
// (RRsets in key order: a name after its ancestors, a name's RRsets
// together), without decoding any into dns.RR: this is how snapshots are
// built, so that a big zone is never held twice. start is called first
// with the zone's info; each is then called for every record with the
// owner in wire form, the type, the TTL and the RDATA (names
// uncompressed). The slices are the store's memory, valid only during
// the call. It all happens in one read transaction, which must not be
// held up long: each must not block. ErrNotFound when there is no such
// zone.
func (s *Store) ReadZone(origin string, start func(Info), each func(owner []byte, t uint16, ttl uint32, rdata []byte)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		info, err := zoneInfo(tx, origin)
		if err != nil {
			return err
		}
		start(info)
		read := 0
		defer func() {
			if read > dropEvery/8 { // not after each of 10,000 small zones
				s.dropMapped(tx.Size())
			}
		}()
		err = forEachPrefixed(tx.Bucket(bucketSets), zonePrefix(info.Origin), func(k, v []byte) error {
			if read += len(k) + len(v); read > dropEvery {
				s.dropMapped(tx.Size())
				read = 1
			}
			t := setType(k)
			return decodeSetNamed(v, false, func(owner []byte, _ string, _ uint16, ttl uint32, rdata []byte) error {
				each(owner, t, ttl, rdata)
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("%w (zone %s)", err, info.Origin)
		}
		return nil
	})
}

// dropEvery is how many bytes of a zone ReadZone reads before it lets the
// pages it read go (see dropMapped).
const dropEvery = 8 << 20

// zoneInfo reads a zone's info.
func zoneInfo(tx *bolt.Tx, origin string) (Info, error) {
	origin = zone.Canonical(origin)
	v := tx.Bucket(bucketZones).Get([]byte(origin))
	if v == nil {
		return Info{}, ErrNotFound
	}
	info, err := decodeInfo(origin, v)
	if err != nil {
		return Info{}, fmt.Errorf("%w: %s", err, origin)
	}
	return info, nil
}

func eachZone(tx *bolt.Tx, fn func(Info) error) error {
	return tx.Bucket(bucketZones).ForEach(func(k, v []byte) error {
		info, err := decodeInfo(string(k), v)
		if err != nil {
			return fmt.Errorf("%w: %s", err, k)
		}
		return fn(info)
	})
}

// loadZone decodes a zone's records.
func loadZone(tx *bolt.Tx, info Info, a *arena) (*zone.Zone, error) {
	z := &zone.Zone{Origin: info.Origin, Records: make([]dns.RR, 0, info.Records)}
	err := forEachPrefixed(tx.Bucket(bucketSets), zonePrefix(info.Origin), func(k, v []byte) error {
		var err error
		z.Records, err = decodeRRs(z.Records, k, a.copy(v))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w (zone %s)", err, info.Origin)
	}
	return z, nil
}

// batchSets is how many RRsets one transaction of a new zone's write
// holds: bbolt keeps every key and value a transaction writes, and the
// pages it builds from them, in memory until the commit.
const batchSets = 20_000

// writeNew is write for an import. A zone the store has is written by
// write, in one transaction: only its changed RRsets, which on a new
// version of a big zone are usually few. A zone the store does not have
// is written in transactions of batchSets RRsets, so that a big zone's
// first import is not held whole in one transaction; its info goes in
// with the last batch, and until then the zone does not exist for any
// reader (every read starts from the info). A crash in between leaves
// RRsets that no info points to: the next write of the zone removes them
// first.
func (s *Store) writeNew(origin string, serial uint32, next setIter, source string) (Info, error) {
	var exists bool
	if err := s.db.View(func(tx *bolt.Tx) error {
		exists = tx.Bucket(bucketZones).Get([]byte(origin)) != nil
		return nil
	}); err != nil {
		return Info{}, err
	}
	if exists {
		return s.write(origin, serial, next, source, nil)
	}
	prefix := zonePrefix(origin)
	if err := s.clearOrphans(prefix); err != nil {
		return Info{}, fmt.Errorf("store: put %s: %w", origin, err)
	}
	info := Info{Origin: origin, Serial: serial, Source: source}
	for done := false; !done; {
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketSets)
			// A new zone's RRsets are appended in key order to a part
			// of the bucket that was empty: pages filled to the brim
			// (see writeTx) make a 13% smaller file for 1M records.
			b.FillPercent = 1.0
			var keep chunks // bbolt holds values until the commit
			var key []byte
			for n := 0; n < batchSets; n++ {
				set, ok, err := next()
				if err != nil {
					return err
				}
				if !ok {
					done = true
					break
				}
				info.Records += set.n
				key = append(append(key[:0], prefix...), set.key...)
				if err := b.Put(key, keep.copy(set.val)); err != nil {
					return err
				}
			}
			if !done {
				return nil
			}
			zones := tx.Bucket(bucketZones)
			if zones.Get([]byte(origin)) != nil {
				return fmt.Errorf("written by another writer meanwhile")
			}
			if err := deletePrefixed(tx.Bucket(bucketJrnl), prefix); err != nil {
				return err
			}
			info.Updated = time.Unix(0, time.Now().UnixNano())
			return zones.Put([]byte(origin), encodeInfo(info))
		})
		if err != nil {
			return Info{}, fmt.Errorf("store: put %s: %w", origin, err)
		}
	}
	return info, nil
}

// clearOrphans deletes, in bounded transactions, RRsets under prefix of a
// zone that has no info (left by an interrupted writeNew).
func (s *Store) clearOrphans(prefix []byte) error {
	for {
		n := 0
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketSets)
			var keys [][]byte
			c := b.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(keys) < batchSets; k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			n = len(keys)
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			if n == 0 {
				return errUnchanged // nothing to commit
			}
			return nil
		})
		if errors.Is(err, errUnchanged) {
			return nil
		}
		if err != nil || n < batchSets {
			return err
		}
	}
}
