// Package store is the controller's state: small JSON values by bucket
// and key (the inventory, group templates, rollouts, quarantined
// releases). KV is what every other package uses, so that a second
// backend (etcd, for more than one controller) is one more
// implementation; Bolt is the embedded default: one file, nothing to run.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrNotFound is returned for a key that is not there.
var ErrNotFound = errors.New("not found")

// KV is the controller's state store. Every Put is durable when it
// returns.
type KV interface {
	Get(bucket, key string) ([]byte, error)
	Put(bucket, key string, val []byte) error
	Delete(bucket, key string) error
	// List returns every key and value of bucket.
	List(bucket string) (map[string][]byte, error)
	Close() error
}

// Bolt is KV in a bbolt file.
type Bolt struct{ db *bolt.DB }

// OpenBolt opens (creating) the store at path. A second controller on the
// same file waits up to 2 s for the lock and then fails with a clear error.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store %s: held by another controller", path)
		}
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

func (b *Bolt) Get(bucket, key string) ([]byte, error) {
	var out []byte
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(bucket))
		if bk == nil {
			return ErrNotFound
		}
		v := bk.Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

func (b *Bolt) Put(bucket, key string, val []byte) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return bk.Put([]byte(key), val)
	})
}

func (b *Bolt) Delete(bucket, key string) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(bucket))
		if bk == nil {
			return nil
		}
		return bk.Delete([]byte(key))
	})
}

func (b *Bolt) List(bucket string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(bucket))
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}

func (b *Bolt) Close() error { return b.db.Close() }

// GetJSON decodes bucket/key into v.
func GetJSON(kv KV, bucket, key string, v any) error {
	b, err := kv.Get(bucket, key)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// PutJSON encodes v into bucket/key.
func PutJSON(kv KV, bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return kv.Put(bucket, key, b)
}

// ListJSON decodes every value of bucket with decode (a new T each).
func ListJSON[T any](kv KV, bucket string) ([]T, error) {
	m, err := kv.List(bucket)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(m))
	for k, b := range m {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("store %s/%s: %w", bucket, k, err)
		}
		out = append(out, v)
	}
	return out, nil
}
