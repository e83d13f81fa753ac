//go:build shoestring_format2

package store

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// A test build's layout, one format ahead of the shipped one: a second
// real build to take a store through a migration and back across an
// OTA rollback (test/node TestStoreMigrationAcrossBuilds; `go build
// -tags shoestring_format2`). Format 2 is format 1 with the moment of
// its migration kept in the store bucket, a change no older firmware
// would miss — what the test proves is the path around it: the snapshot
// before migrating, the older firmware restoring it, the commit dropping
// it. Never built into an image.
var current = schema{
	version: formatVersion + 1,
	migrate: map[byte]func(*bolt.Tx) error{
		formatVersion: func(tx *bolt.Tx) error {
			return tx.Bucket(bucketStore).Put([]byte("migrated-to-format2"), []byte(time.Now().UTC().Format(time.RFC3339)))
		},
	},
}
