// Package store is the controller's state: small JSON values by bucket
// and key (the inventory, group templates, rollouts, quarantined
// releases). KV is what every other package uses; Bolt is the embedded
// default (one file, nothing to run), Etcd the backend for several
// controllers of which one, the leader, writes.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrNotFound is returned for a key that is not there.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by PutIfVersion when the key changed since the
// version the caller read.
var ErrConflict = errors.New("changed by someone else since it was read")

// ErrNotLeader is returned for a write by a controller that is not (or
// no longer) the leader of a shared store.
var ErrNotLeader = errors.New("this controller is not the leader")

// KV is the controller's state store. Every write is durable when it
// returns.
type KV interface {
	Get(bucket, key string) ([]byte, error)
	Put(bucket, key string, val []byte) error
	Delete(bucket, key string) error
	// List returns every key and value of bucket.
	List(bucket string) (map[string][]byte, error)
	// GetVersion is Get with the value's version: it changes with
	// every write of the key.
	GetVersion(bucket, key string) ([]byte, int64, error)
	// PutIfVersion writes val only if the key's version is still
	// version (0: only if the key is absent), atomically; otherwise
	// ErrConflict. It returns the new version.
	PutIfVersion(bucket, key string, val []byte, version int64) (int64, error)
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
		_, err := boltPut(tx, bucket, key, val)
		return err
	})
}

// versionsBucket holds each key's version (a name no caller uses: it
// starts with a NUL byte).
const versionsBucket = "\x00versions"

func versionKey(bucket, key string) []byte { return []byte(bucket + "\x00" + key) }

// boltPut writes val and gives the key a new version: the store-wide
// sequence plus one, so that a key written before versions were kept
// (version 1) never shares one with a later write.
func boltPut(tx *bolt.Tx, bucket, key string, val []byte) (int64, error) {
	bk, err := tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return 0, err
	}
	vb, err := tx.CreateBucketIfNotExists([]byte(versionsBucket))
	if err != nil {
		return 0, err
	}
	seq, err := vb.NextSequence()
	if err != nil {
		return 0, err
	}
	v := int64(seq) + 1
	if err := vb.Put(versionKey(bucket, key), binary.BigEndian.AppendUint64(nil, uint64(v))); err != nil {
		return 0, err
	}
	return v, bk.Put([]byte(key), val)
}

// boltVersion is key's version in tx: 0 when absent.
func boltVersion(tx *bolt.Tx, bucket, key string) int64 {
	bk := tx.Bucket([]byte(bucket))
	if bk == nil || bk.Get([]byte(key)) == nil {
		return 0
	}
	if vb := tx.Bucket([]byte(versionsBucket)); vb != nil {
		if v := vb.Get(versionKey(bucket, key)); len(v) == 8 {
			return int64(binary.BigEndian.Uint64(v))
		}
	}
	return 1
}

func (b *Bolt) GetVersion(bucket, key string) ([]byte, int64, error) {
	var out []byte
	var ver int64
	err := b.db.View(func(tx *bolt.Tx) error {
		if ver = boltVersion(tx, bucket, key); ver == 0 {
			return ErrNotFound
		}
		out = append([]byte(nil), tx.Bucket([]byte(bucket)).Get([]byte(key))...)
		return nil
	})
	return out, ver, err
}

func (b *Bolt) PutIfVersion(bucket, key string, val []byte, version int64) (int64, error) {
	var nv int64
	err := b.db.Update(func(tx *bolt.Tx) error {
		if boltVersion(tx, bucket, key) != version {
			return ErrConflict
		}
		var err error
		nv, err = boltPut(tx, bucket, key, val)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store %s/%s: %w", bucket, key, err)
	}
	return nv, nil
}

func (b *Bolt) Delete(bucket, key string) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(bucket))
		if bk == nil {
			return nil
		}
		if vb := tx.Bucket([]byte(versionsBucket)); vb != nil {
			if err := vb.Delete(versionKey(bucket, key)); err != nil {
				return err
			}
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
