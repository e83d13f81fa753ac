package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Schema versions across firmware versions. A firmware reads and writes
// one format (formatVersion). One that needs a new layout migrates an
// older file forward in one transaction — after taking a snapshot of it,
// so that the firmware it would roll back to (an OTA trial that fails)
// finds a file it can read: an older firmware that opens a newer file
// restores the snapshot of its own format when there is one, putting the
// newer file aside. The OTA commit drops the snapshots (DropSnapshots):
// once the new firmware is committed there is no rollback to serve.
//
// What a rollback loses: zone changes written after the migration, on
// the firmware that failed its trial (a soak's worth at most: secondary
// zones are transferred again from their primaries, an API upload made
// during the trial must be made again). What it keeps: everything
// acknowledged before the update.

// schema is a store layout: its version and the migrations that reach
// it, migrate[v] turning format v into format v+1.
type schema struct {
	version byte
	migrate map[byte]func(tx *bolt.Tx) error
}

// snapshotPath is the copy of the file taken before migrating from
// format v.
func snapshotPath(path string, v byte) string { return fmt.Sprintf("%s.format%d", path, v) }

// rolledBackPath is where a newer firmware's file is put aside when its
// snapshot is restored.
func rolledBackPath(path string, v byte) string {
	return fmt.Sprintf("%s.rolled-back-format%d", path, v)
}

// fileFormat reads the format of an open file (0: a new file).
func fileFormat(db *bolt.DB) (byte, error) {
	var v byte
	err := db.View(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketStore)
		if sb == nil {
			return nil
		}
		f := sb.Get(keyFormat)
		if len(f) != 1 || f[0] == 0 {
			return fmt.Errorf("store format %v unreadable", f)
		}
		v = f[0]
		return nil
	})
	return v, err
}

// migrateFile brings a file of an older format to sc's: a snapshot first
// (a consistent copy from a read transaction, synced), then every step
// in one write transaction, so a cut leaves the old format or the new.
func (sc schema) migrateFile(db *bolt.DB, path string, from byte) error {
	for v := from; v < sc.version; v++ {
		if sc.migrate[v] == nil {
			return fmt.Errorf("store format %d: no migration to format %d", v, v+1)
		}
	}
	snap := snapshotPath(path, from)
	if err := db.View(func(tx *bolt.Tx) error { return writeSnapshot(tx, snap) }); err != nil {
		return fmt.Errorf("snapshot before migrating: %w", err)
	}
	return db.Update(func(tx *bolt.Tx) error {
		for v := from; v < sc.version; v++ {
			if err := sc.migrate[v](tx); err != nil {
				return fmt.Errorf("migrating format %d to %d: %w", v, v+1, err)
			}
		}
		return tx.Bucket(bucketStore).Put(keyFormat, []byte{sc.version})
	})
}

func writeSnapshot(tx *bolt.Tx, dst string) error {
	tmp := dst + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := tx.WriteTo(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// restoreSnapshot puts the newer file (format newer) aside and its
// snapshot of format sc.version in its place; false when there is no
// snapshot.
func (sc schema) restoreSnapshot(path string, newer byte) (bool, error) {
	snap := snapshotPath(path, sc.version)
	if _, err := os.Stat(snap); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if err := os.Rename(path, rolledBackPath(path, newer)); err != nil {
		return false, err
	}
	if err := os.Rename(snap, path); err != nil {
		return false, err
	}
	return true, syncDir(filepath.Dir(path))
}

// DropSnapshots removes the snapshots taken before migrations of the
// store at path: called once the firmware that migrated it is
// committed, as nothing will roll back to them any more.
func DropSnapshots(path string) error {
	m, err := filepath.Glob(path + ".format*")
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range m {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(m) > 0 {
		errs = append(errs, syncDir(filepath.Dir(path)))
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
