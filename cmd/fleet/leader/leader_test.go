package leader

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/store"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// TestFailover: two controllers campaign against a real etcd; the first
// leads, the other stands by and its writes are refused. The leader's
// client dies without resigning (its lease is left to expire, as when
// the process is killed): the standby leads within the TTL and a bit,
// and the old leader's writes, should it still try, are refused.
func TestFailover(t *testing.T) {
	srv := refserver.StartEtcd(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	type ctl struct {
		kv   *store.Etcd
		el   *Elector
		lead chan context.Context
	}
	start := func(name string) *ctl {
		kv, err := store.OpenEtcd(store.EtcdConfig{Endpoints: []string{srv.Endpoint}, Prefix: "/t"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kv.Close() })
		c := &ctl{kv: kv, el: &Elector{Client: kv.Client(), Prefix: "/t/leader", Name: name, TTL: 2 * time.Second, Log: log}, lead: make(chan context.Context, 1)}
		kv.Fence = c.el.Fence
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go c.el.Run(ctx, func(ctx context.Context) {
			c.lead <- ctx
			<-ctx.Done()
		})
		return c
	}
	a := start("a")
	var actx context.Context
	select {
	case actx = <-a.lead:
	case <-time.After(10 * time.Second):
		t.Fatal("a never led")
	}
	b := start("b")
	if err := a.el.Check(context.Background()); err != nil {
		t.Fatalf("the leader's check: %v", err)
	}
	if err := a.kv.Put("groups", "g", []byte("a")); err != nil {
		t.Fatalf("the leader's write: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := b.el.Leader(context.Background())
		if err == nil && l == "a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b sees leader %q (%v), want a", l, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b.el.Leading() || b.el.Check(context.Background()) == nil {
		t.Fatal("b leads too")
	}
	if err := b.kv.Put("groups", "g", []byte("b")); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("the standby's write: %v, want ErrNotLeader", err)
	}

	// a dies: its keep-alives stop; the lease lapses in TTL at most.
	key, rev, _ := a.el.Fence()
	killed := time.Now()
	a.kv.Client().Close()
	var bctx context.Context
	select {
	case bctx = <-b.lead:
	case <-time.After(10 * time.Second):
		t.Fatal("b did not take over within 10 s")
	}
	took := time.Since(killed)
	t.Logf("failover (leader's client closed → standby leads): %s", took.Round(time.Millisecond))
	if took > 4*time.Second {
		t.Errorf("failover took %s with a 2 s TTL", took)
	}
	select {
	case <-actx.Done():
	case <-time.After(3 * time.Second):
		t.Error("the old leader's context is still live")
	}
	if err := b.kv.Put("groups", "g", []byte("b")); err != nil {
		t.Fatalf("the new leader's write: %v", err)
	}
	// The old term's fence (what a stalled old leader would still hold)
	// no longer lets anything through.
	old, err := store.OpenEtcd(store.EtcdConfig{Endpoints: []string{srv.Endpoint}, Prefix: "/t"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	old.Fence = func() (string, int64, bool) { return key, rev, true }
	if err := old.Put("groups", "g", []byte("stale a")); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("the old term's write: %v, want ErrNotLeader", err)
	}
	if v, _ := b.kv.Get("groups", "g"); string(v) != "b" {
		t.Fatalf("g is %q, want b's", v)
	}
	if l, _ := b.el.Leader(context.Background()); l != "b" {
		t.Fatalf("leader %q, want b", l)
	}
	_ = bctx
}
