package store

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// A zone's RRsets and journal entries share buckets with every other
// zone's, under the key prefix "<origin> 0x00" (see the package comment).

func zonePrefix(origin string) []byte { return append([]byte(origin), 0) }

// forEachPrefixed calls fn for each key in b starting with prefix, in
// order, with the prefix stripped. fn must not modify b.
func forEachPrefixed(b *bolt.Bucket, prefix []byte, fn func(k, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(k[len(prefix):], v); err != nil {
			return err
		}
	}
	return nil
}

// deletePrefixed deletes every key in b starting with prefix.
func deletePrefixed(b *bolt.Bucket, prefix []byte) error {
	var keys [][]byte
	err := forEachPrefixed(b, prefix, func(k, _ []byte) error {
		keys = append(keys, append(bytes.Clone(prefix), k...))
		return nil
	})
	if err != nil {
		return err
	}
	// Deleting under a live cursor can skip keys, so delete afterwards.
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
