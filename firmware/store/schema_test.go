package store

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// v2 is a later firmware's layout: it moves meta/cfg/* to meta/cfg2/*,
// upper-cased, which this firmware (format 1) cannot read.
func v2(fail bool) schema {
	return schema{version: 2, migrate: map[byte]func(*bolt.Tx) error{1: func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		old := m.Bucket([]byte("cfg"))
		nb, err := m.CreateBucketIfNotExists([]byte("cfg2"))
		if err != nil {
			return err
		}
		if err := old.ForEach(func(k, v []byte) error { return nb.Put(k, bytes.ToUpper(v)) }); err != nil {
			return err
		}
		if fail {
			return errors.New("disk full")
		}
		return m.DeleteBucket([]byte("cfg"))
	}}}
}

func meta(t *testing.T, s *Store, b, k string) string {
	t.Helper()
	v, err := s.GetMeta(b, k)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(v)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestMigrationRollback: a newer firmware migrates the store after a
// snapshot; rolled back to, this firmware restores the snapshot (what it
// wrote before the update is there, the newer file put aside); once the
// newer firmware is committed the snapshot is dropped and this firmware
// refuses the newer file rather than misread it.
func TestMigrationRollback(t *testing.T) {
	s, path := open(t, Options{})
	if err := s.PutMeta("cfg", "k", []byte("before the update")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// The new firmware migrates.
	n, err := openSchema(path, Options{}, v2(false))
	if err != nil {
		t.Fatal(err)
	}
	if got := meta(t, n, "cfg2", "k"); got != "BEFORE THE UPDATE" {
		t.Errorf("migrated value: %q", got)
	}
	if err := n.PutMeta("cfg2", "trial", []byte("written on trial")); err != nil {
		t.Fatal(err)
	}
	n.Close()
	if !exists(snapshotPath(path, 1)) {
		t.Fatalf("no snapshot before the migration")
	}
	// Reopening the migrated file migrates nothing again.
	n, err = openSchema(path, Options{}, v2(false))
	if err != nil {
		t.Fatal(err)
	}
	n.Close()

	// Its trial fails: this firmware opens the store again.
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("rolled back: %v", err)
	}
	if got := meta(t, o, "cfg", "k"); got != "before the update" {
		t.Errorf("after the rollback: %q", got)
	}
	o.Close()
	if exists(snapshotPath(path, 1)) || !exists(rolledBackPath(path, 2)) {
		t.Errorf("after the rollback: snapshot %v, newer file kept aside %v", exists(snapshotPath(path, 1)), exists(rolledBackPath(path, 2)))
	}

	// Updated again, committed this time: no snapshot is kept.
	n, err = openSchema(path, Options{}, v2(false))
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	if err := DropSnapshots(path); err != nil {
		t.Fatal(err)
	}
	if exists(snapshotPath(path, 1)) {
		t.Errorf("snapshot left after the commit")
	}
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "no snapshot") {
		t.Errorf("open of a committed newer store: %v", err)
	}
}

// TestMigrationFails: a migration that fails halfway leaves the old
// format and its data, readable by this firmware.
func TestMigrationFails(t *testing.T) {
	s, path := open(t, Options{})
	if err := s.PutMeta("cfg", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := openSchema(path, Options{}, v2(true)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("failing migration: %v", err)
	}
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got := meta(t, o, "cfg", "k"); got != "v" {
		t.Errorf("after a failed migration: %q", got)
	}
	if got := meta(t, o, "cfg2", "k"); !strings.Contains(got, "not found") {
		t.Errorf("half a migration visible: %q", got)
	}
}
