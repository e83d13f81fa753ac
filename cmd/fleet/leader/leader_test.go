package leader

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/store"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// TestFailover: controllers campaign against a real etcd. The first
// leads, a second stands by (its writes are refused). The leader stops
// cleanly: it revokes its lease and the standby leads at once, long
// before the leader's 10 s lease would have lapsed. Then that leader is
// cut off from etcd (as when its host dies): a third
// leads when its 2 s lease lapses, the old leader (cut off, alive) stops
// acting, and its fence, should a stalled process still hold it, lets
// nothing through.
func TestFailover(t *testing.T) {
	srv := refserver.StartEtcd(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	type ctl struct {
		kv   *store.Etcd
		el   *Elector
		lead chan context.Context
		stop context.CancelFunc
		done chan struct{}
	}
	start := func(name string, ttl time.Duration, endpoint string) *ctl {
		kv, err := store.OpenEtcd(store.EtcdConfig{Endpoints: []string{endpoint}, Prefix: "/t"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kv.Close() })
		c := &ctl{kv: kv, el: &Elector{Client: kv.Client(), Prefix: "/t/leader", Name: name, TTL: ttl, Log: log}, lead: make(chan context.Context, 1)}
		kv.Fence = c.el.Fence
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		c.stop, c.done = cancel, make(chan struct{})
		go func() {
			defer close(c.done)
			c.el.Run(ctx, func(ctx context.Context) {
				c.lead <- ctx
				<-ctx.Done()
			})
		}()
		return c
	}
	leads := func(c *ctl, within time.Duration) context.Context {
		t.Helper()
		select {
		case ctx := <-c.lead:
			return ctx
		case <-time.After(within):
			t.Fatalf("%s did not lead within %s", c.el.Name, within)
			return nil
		}
	}
	seesLeader := func(c *ctl, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			l, err := c.el.Leader(context.Background())
			if err == nil && l == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s sees leader %q (%v), want %s", c.el.Name, l, err, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	a := start("a", 10*time.Second, srv.Endpoint)
	actx := leads(a, 10*time.Second)
	// b reaches etcd through a proxy that the test cuts: b can then
	// neither renew its lease nor revoke it, as when its host dies.
	link := newCutter(t, strings.TrimPrefix(srv.Endpoint, "http://"))
	b := start("b", 2*time.Second, link.addr)
	seesLeader(b, "a")
	if err := a.el.Check(context.Background()); err != nil {
		t.Fatalf("the leader's check: %v", err)
	}
	if err := a.kv.Put("groups", "g", []byte("a")); err != nil {
		t.Fatalf("the leader's write: %v", err)
	}
	if b.el.Leading() || b.el.Check(context.Background()) == nil {
		t.Fatal("b leads too")
	}
	if err := b.kv.Put("groups", "g", []byte("b")); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("the standby's write: %v, want ErrNotLeader", err)
	}

	// a stops cleanly: b leads without waiting out a's 10 s lease.
	stopped := time.Now()
	a.stop()
	bctx := leads(b, 10*time.Second)
	took := time.Since(stopped)
	t.Logf("handover (leader stopped cleanly → standby leads): %s", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("handover after a clean stop took %s: a's lease was not revoked", took)
	}
	if actx.Err() == nil {
		t.Error("a's leadership context is live after its stop")
	}
	<-a.done
	if err := b.kv.Put("groups", "g", []byte("b")); err != nil {
		t.Fatalf("the new leader's write: %v", err)
	}

	// b is cut off: its keep-alives stop, its 2 s lease lapses.
	c := start("c", 2*time.Second, srv.Endpoint)
	seesLeader(c, "b")
	key, rev, _ := b.el.Fence()
	killed := time.Now()
	link.cut()
	leads(c, 10*time.Second)
	took = time.Since(killed)
	t.Logf("failover (leader cut off → standby leads, 2 s lease): %s", took.Round(time.Millisecond))
	if took < time.Second || took > 6*time.Second {
		t.Errorf("failover took %s with a 2 s lease", took)
	}
	select {
	case <-bctx.Done():
	case <-time.After(3 * time.Second):
		t.Error("the cut-off leader's context is still live")
	}
	if b.el.Leading() {
		t.Error("the cut-off leader still thinks it leads")
	}
	if err := c.kv.Put("groups", "g", []byte("c")); err != nil {
		t.Fatalf("the new leader's write: %v", err)
	}
	// b's term's fence (what a stalled b would still hold) lets nothing
	// through.
	old, err := store.OpenEtcd(store.EtcdConfig{Endpoints: []string{srv.Endpoint}, Prefix: "/t"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	old.Fence = func() (string, int64, bool) { return key, rev, true }
	if err := old.Put("groups", "g", []byte("stale b")); !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("the old term's write: %v, want ErrNotLeader", err)
	}
	if v, _ := c.kv.Get("groups", "g"); string(v) != "c" {
		t.Fatalf("g is %q, want c's", v)
	}
	seesLeader(c, "c")
}

// cutter is a TCP proxy to etcd whose cut drops every connection and
// accepts none after.
type cutter struct {
	addr  string
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  bool
}

func newCutter(t *testing.T, target string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{addr: ln.Addr().String(), ln: ln}
	t.Cleanup(c.cut)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			if c.done {
				in.Close()
				out.Close()
			}
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return c
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	c.ln.Close()
	for _, conn := range c.conns {
		conn.Close()
	}
}
