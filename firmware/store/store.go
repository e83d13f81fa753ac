// Package store is the truth on the box: zones with their IXFR journals,
// and small key/value state for other subsystems (config, transfer state,
// OTA state), in one bbolt file. A box that reboots serves from the store
// before any transfer, so loading is fast; the SD card it lives on wears
// out, so a change rewrites only the RRsets that changed; and every write
// is one bbolt transaction, so a power cut loses nothing acknowledged and
// never leaves half a zone.
//
// Layout of the file (flat: a bucket per zone would cost every zone at
// least a page of its own, 40 MB for 10k small zones, read at each boot):
//
//	store/format                      format version (formatVersion)
//	zones/<origin>                    info: serial, record count, update time, source
//	rrsets/<origin> 0x00 <set key>    one value per RRset (see encoding.go)
//	journal/<origin> 0x00 <seq>       deltas, sequence big-endian (see journal.go)
//	meta/<bucket>/<key>               other subsystems' values
//
// Origins are canonical text, which never contains a 0x00 byte, so the
// prefix "<origin> 0x00" selects exactly one zone's keys, and the zones
// sort the same way in every bucket.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// formatVersion is the layout this code reads and writes. A later
// firmware that changes the layout migrates the file and bumps it, after
// a snapshot; an older firmware (after an OTA rollback) restores its
// snapshot, or refuses a newer file with none, instead of misreading it
// (schema.go).
const formatVersion = 1

var (
	// ErrNotFound: no such zone or meta key.
	ErrNotFound = errors.New("store: not found")
	// ErrJournalGap: the journal does not reach back to the serial asked
	// for (the caller falls back to a full transfer).
	ErrJournalGap = errors.New("store: journal does not cover the requested serial")
	// ErrSerialMismatch: a delta does not start at the zone's serial.
	ErrSerialMismatch = errors.New("store: delta does not start at the current serial")
	// ErrLocked: another process has the store open.
	ErrLocked = errors.New("store: locked by another process")
)

var (
	bucketStore = []byte("store")
	bucketZones = []byte("zones")
	bucketMeta  = []byte("meta")
	keyFormat   = []byte("format")
	bucketSets  = []byte("rrsets")
	bucketJrnl  = []byte("journal")
)

var topBuckets = [][]byte{bucketZones, bucketSets, bucketJrnl, bucketMeta}

// Options tune the store; zero values mean the defaults.
type Options struct {
	JournalLimit    int // max journal entries kept per zone, default 64
	JournalMaxBytes int // max journal bytes kept per zone, default 4 MiB
	// ImportSpill is the bytes of records an import holds before it
	// sorts them out to a file in the store's directory (spill.go);
	// default 64 MiB, -1: never.
	ImportSpill int64
}

// Info describes a stored zone.
type Info struct {
	Origin  string
	Serial  uint32
	Records int
	Updated time.Time // when the content last changed
	Source  string    // "file", "api", "transfer", or "" if not said
}

// Delta is one zone change as IXFR carries it. Removed holds the records
// of the old version not in the new one, starting with the old SOA; Added
// holds the records of the new version not in the old one, starting with
// the new SOA.
type Delta struct {
	FromSerial, ToSerial uint32
	Removed, Added       []dns.RR
	Time                 time.Time
}

// Store is an open store. Its methods are safe for concurrent use.
type Store struct {
	db   *bolt.DB
	opts Options
}

// Open opens the store at path, creating the file and its directory if
// needed. If another process has it open, Open fails after a second with
// ErrLocked rather than hang the boot.
func Open(path string, opts Options) (*Store, error) { return openSchema(path, opts, current) }

func openSchema(path string, opts Options, sc schema) (*Store, error) {
	if opts.JournalLimit <= 0 {
		opts.JournalLimit = 64
	}
	if opts.JournalMaxBytes <= 0 {
		opts.JournalMaxBytes = 4 << 20
	}
	if opts.ImportSpill == 0 {
		opts.ImportSpill = spillDefault
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	v, err := fileFormat(db)
	if err == nil && v > sc.version {
		// A newer firmware migrated the file: this one was rolled back to.
		db.Close()
		restored, rerr := sc.restoreSnapshot(path, v)
		switch {
		case rerr != nil:
			return nil, fmt.Errorf("store: %s: format %d is newer than this firmware's %d; restoring its snapshot: %w", path, v, sc.version, rerr)
		case !restored:
			return nil, fmt.Errorf("store: %s: store format [%d], this firmware reads only format %d, and there is no snapshot %s to go back to", path, v, sc.version, snapshotPath(path, sc.version))
		}
		if db, err = openDB(path); err != nil {
			return nil, err
		}
		v, err = fileFormat(db)
	}
	if err == nil && v != 0 && v < sc.version {
		err = sc.migrateFile(db, path, v)
	}
	if err == nil {
		err = checkFormat(db, sc.version)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	removeSpillLeftovers(filepath.Dir(path))
	return &Store{db: db, opts: opts}, nil
}

func openDB(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: time.Second,
		// The freelist is written with every commit (NoFreelistSync off):
		// a few pages more per write, but opening then reads it instead
		// of walking the whole file, and boot time is what we optimise.
		// The hashmap freelist stays fast as a zone file fragments.
		FreelistType: bolt.FreelistMapType,
		// Map 64 MiB of address space up front: bbolt remaps (and walks
		// every cached node) each time a growing file outgrows the map,
		// which made a large zone's first write 20% slower. It is
		// address space, not memory: pages are only resident when read.
		InitialMmapSize: 64 << 20,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

// checkFormat refuses a file written in a format this code does not know,
// and sets up a new one. A file already set up is only read: no commit,
// so no SD write, per boot.
func checkFormat(db *bolt.DB, version byte) error {
	ready := false
	err := db.View(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketStore)
		if sb == nil {
			return nil
		}
		if err := versionOK(sb.Get(keyFormat), version); err != nil {
			return err
		}
		ready = true
		for _, name := range topBuckets {
			ready = ready && tx.Bucket(name) != nil
		}
		return nil
	})
	if err != nil || ready {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error { return initFormat(tx, version) })
}

func versionOK(v []byte, version byte) error {
	if len(v) != 1 || v[0] != version {
		return fmt.Errorf("store format %v, this firmware reads only format %d", v, version)
	}
	return nil
}

// initFormat creates the top-level buckets of a new file.
func initFormat(tx *bolt.Tx, version byte) error {
	sb := tx.Bucket(bucketStore)
	if sb == nil {
		var err error
		if sb, err = tx.CreateBucket(bucketStore); err != nil {
			return err
		}
		if err := sb.Put(keyFormat, []byte{version}); err != nil {
			return err
		}
	}
	if err := versionOK(sb.Get(keyFormat), version); err != nil {
		return err
	}
	for _, name := range topBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the store, waiting for transactions in progress.
func (s *Store) Close() error { return s.db.Close() }
