package store

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Meta values are small state other subsystems keep next to the zones so
// that it shares their crash safety: the last config that worked, transfer
// state, OTA state. Each subsystem uses its own bucket name.

// GetMeta returns a copy of the value at bucket/key, or ErrNotFound.
func (s *Store) GetMeta(bucket, key string) ([]byte, error) {
	var val []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta).Bucket([]byte(bucket))
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		val = bytes.Clone(v)
		return nil
	})
	return val, err
}

// PutMeta stores val at bucket/key; it is durable when PutMeta returns.
func (s *Store) PutMeta(bucket, key string, val []byte) error {
	if bucket == "" || key == "" {
		return fmt.Errorf("store: meta bucket and key must not be empty")
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketMeta).CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		if val == nil {
			val = []byte{} // bbolt stores nil as empty anyway; be explicit
		}
		return b.Put([]byte(key), val)
	})
}

// DeleteMeta removes bucket/key. Deleting what is not there is not an
// error: callers delete to reach a state, not to check one.
func (s *Store) DeleteMeta(bucket, key string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta).Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.Delete([]byte(key))
	})
}

// The last config that worked, kept so that a box that boots with a bad
// one (or none) keeps serving: the node saves it once it is up; `run` and
// PID 1 fall back to it.
const (
	configBucket = "config"
	lastGoodKey  = "last-good"
)

// LastGoodConfig returns the last config document a node ran with
// successfully, or ErrNotFound.
func (s *Store) LastGoodConfig() ([]byte, error) { return s.GetMeta(configBucket, lastGoodKey) }

// SaveLastGoodConfig records doc as the last config that worked.
func (s *Store) SaveLastGoodConfig(doc []byte) error {
	return s.PutMeta(configBucket, lastGoodKey, doc)
}
