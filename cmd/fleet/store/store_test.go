package store

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/refserver"
)

// contract is what every backend must do, whatever it is.
func contract(t *testing.T, a, b KV) {
	t.Helper()
	if _, err := a.Get("nodes", "ams1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of an absent key: %v, want ErrNotFound", err)
	}
	if _, _, err := a.GetVersion("nodes", "ams1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get version of an absent key: %v, want ErrNotFound", err)
	}
	if err := a.Put("nodes", "ams1", []byte(`{"name":"ams1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Put("nodes", "fra1", []byte(`{"name":"fra1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Put("groups", "edge", []byte(`x`)); err != nil {
		t.Fatal(err)
	}
	// The other handle (another controller, for etcd) sees the writes.
	if v, err := b.Get("nodes", "ams1"); err != nil || string(v) != `{"name":"ams1"}` {
		t.Fatalf("get: %q %v", v, err)
	}
	m, err := b.List("nodes")
	if err != nil || len(m) != 2 || string(m["fra1"]) != `{"name":"fra1"}` {
		t.Fatalf("list nodes: %v %v, want ams1 and fra1 only", m, err)
	}
	if m, _ := b.List("none"); len(m) != 0 {
		t.Fatalf("list of an empty bucket: %v", m)
	}
	if err := a.Delete("nodes", "fra1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get("nodes", "fra1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}

	// Versions: create-only with 0, then compare-and-swap. Two writers
	// that read the same version: the first wins, the second conflicts.
	v1, err := a.PutIfVersion("rollouts", "r1", []byte("step 1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutIfVersion("rollouts", "r1", []byte("again"), 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("create over an existing key: %v, want ErrConflict", err)
	}
	val, va, err := a.GetVersion("rollouts", "r1")
	if err != nil || va != v1 || string(val) != "step 1" {
		t.Fatalf("get version: %q %d %v, want %q %d", val, va, err, "step 1", v1)
	}
	_, vb, _ := b.GetVersion("rollouts", "r1")
	v2, err := a.PutIfVersion("rollouts", "r1", []byte("step 2 by a"), va)
	if err != nil {
		t.Fatal(err)
	}
	if v2 == v1 {
		t.Fatalf("the version did not change with a write: %d", v2)
	}
	if _, err := b.PutIfVersion("rollouts", "r1", []byte("step 2 by b"), vb); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale write: %v, want ErrConflict", err)
	}
	if v, _ := b.Get("rollouts", "r1"); string(v) != "step 2 by a" {
		t.Fatalf("after the conflict: %q, want a's step", v)
	}
	// An unconditional Put changes the version too.
	if err := b.Put("rollouts", "r1", []byte("put")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutIfVersion("rollouts", "r1", []byte("step 3"), v2); !errors.Is(err, ErrConflict) {
		t.Fatalf("write over a Put since: %v, want ErrConflict", err)
	}
}

func TestBolt(t *testing.T) {
	db, err := OpenBolt(filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	contract(t, db, db)
	// Versions are not in a bucket anyone lists.
	if m, _ := db.List(versionsBucket); len(m) == 0 {
		t.Fatal("no versions kept")
	}
	if m, _ := db.List("rollouts"); len(m) != 1 {
		t.Fatalf("rollouts: %v", m)
	}
}

// TestEtcd runs the contract against a real etcd with two clients (two
// controllers), then the fence: writes succeed only while the fence's
// key exists with the fence's creation revision.
func TestEtcd(t *testing.T) {
	srv := refserver.StartEtcd(t)
	open := func() *Etcd {
		e, err := OpenEtcd(EtcdConfig{Endpoints: []string{srv.Endpoint}, Prefix: "/test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	a, b := open(), open()
	contract(t, a, b)

	// Keys live under the prefix, by bucket.
	ctx := context.Background()
	resp, err := a.Client().Get(ctx, "/test/kv/nodes/ams1")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("ams1 is not at /test/kv/nodes/ams1: %v %v", resp, err)
	}

	// The fence: a's writes hold only while "leader" is a's.
	put, err := a.Client().Put(ctx, "/test/leader/a", "a")
	if err != nil {
		t.Fatal(err)
	}
	rev := put.Header.Revision
	a.Fence = func() (string, int64, bool) { return "/test/leader/a", rev, true }
	b.Fence = func() (string, int64, bool) { return "", 0, false }
	if err := a.Put("groups", "edge", []byte("by the leader")); err != nil {
		t.Fatalf("the leader's write: %v", err)
	}
	_, ver, _ := a.GetVersion("rollouts", "r1")
	if _, err := b.PutIfVersion("rollouts", "r1", []byte("by a standby"), ver); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a standby's write: %v, want ErrNotLeader", err)
	}
	if err := b.Delete("groups", "edge"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a standby's delete: %v, want ErrNotLeader", err)
	}
	// A conflict inside the fence is a conflict, not a lost leadership.
	if _, err := a.PutIfVersion("rollouts", "r1", []byte("stale"), ver-1); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale write by the leader: %v, want ErrConflict", err)
	}
	// The leader key goes (its lease expired): a, which has not noticed
	// and still thinks it leads, writes nothing.
	if _, err := a.Client().Delete(ctx, "/test/leader/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutIfVersion("rollouts", "r1", []byte("after the end"), ver); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("write after the leader key went: %v, want ErrNotLeader", err)
	}
	// Nor once the key is back under another revision (a new term).
	if _, err := a.Client().Put(ctx, "/test/leader/a", "a"); err != nil {
		t.Fatal(err)
	}
	if err := a.Put("groups", "edge", []byte("old term")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("write with an old term's revision: %v, want ErrNotLeader", err)
	}
	if v, _ := b.Get("rollouts", "r1"); string(v) != "put" {
		t.Fatalf("r1 is %q: a write got through the fence", v)
	}
}

// TestEtcdUnreachable: a controller pointed at no etcd says so.
func TestEtcdUnreachable(t *testing.T) {
	ports, err := refserver.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenEtcd(EtcdConfig{Endpoints: []string{"127.0.0.1:" + strconv.Itoa(ports[0])}, Timeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("opened an etcd that is not there")
	}
	t.Log(err)
}
