// Package leader elects, among controllers sharing one etcd store, the
// one that acts: it campaigns in an etcd election on a session lease, runs
// the caller's work while it leads, and stops it the moment the lease or
// the election key is gone. It also hands the store its fence (the
// leader key and revision every write is conditioned on) and answers,
// for the dashboard, who leads.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Elector campaigns for leadership of Prefix under the name Name.
type Elector struct {
	Client *clientv3.Client
	Prefix string        // the election's key prefix
	Name   string        // this controller, as the dashboard shows it
	TTL    time.Duration // the session lease (whole seconds, at least 2 s: etcd's floor)
	Log    *slog.Logger

	mu   sync.Mutex
	term *term // nil unless leading
}

type term struct {
	key   string
	rev   int64
	lease clientv3.LeaseID
	// ctx is the term's: over the moment leadership is lost, before
	// the lead function has returned and the term is cleared.
	ctx context.Context
}

// ErrNotLeading is Check's answer on a controller that does not lead.
var ErrNotLeading = errors.New("not the leader")

func (e *Elector) seconds() int {
	s := int((e.TTL + time.Second - 1) / time.Second)
	if s < 2 {
		s = 2
	}
	return s
}

// Run campaigns until ctx ends. Each time this controller wins, lead
// runs with a context that is cancelled when the leadership ends (the
// session's lease lapsed, or the election key was deleted) or ctx ends;
// when lead returns the lease is revoked, so a standby takes over at
// once, and the campaign starts again (unless ctx ended: then Run
// returns; the client must stay open until it has).
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) {
	for ctx.Err() == nil {
		if err := e.once(ctx, lead); err != nil && ctx.Err() == nil {
			e.Log.Warn("leader election", "err", err)
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
}

func (e *Elector) once(ctx context.Context, lead func(ctx context.Context)) error {
	s, err := concurrency.NewSession(e.Client, concurrency.WithTTL(e.seconds()), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	defer s.Close()
	el := concurrency.NewElection(s, e.Prefix)
	// Campaign returns when every older candidate's key is gone; if this
	// session's own lease lapsed meanwhile it returns too, so the key is
	// checked once more below.
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.Done():
		case <-cctx.Done():
		}
		cancel()
	}()
	err = el.Campaign(cctx, e.Name)
	cancel()
	if err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	lctx, stop := context.WithCancel(ctx)
	t := &term{key: el.Key(), rev: el.Rev(), lease: s.Lease(), ctx: lctx}
	defer stop()
	// The lease's end (the session sees its keep-alives stop) or the
	// key's deletion (a watch event) ends the leadership.
	wch := e.Client.Watch(clientv3.WithRequireLeader(lctx), t.key, clientv3.WithRev(t.rev))
	if err := e.check(ctx, t); err != nil {
		return err
	}
	go func() {
		defer stop()
		for {
			select {
			case <-s.Done():
				return
			case <-lctx.Done():
				return
			case wr, ok := <-wch:
				if !ok || wr.Err() != nil {
					return
				}
				for _, ev := range wr.Events {
					if ev.Type == clientv3.EventTypeDelete {
						return
					}
				}
			}
		}
	}()
	e.mu.Lock()
	e.term = t
	e.mu.Unlock()
	e.Log.Info("leader: this controller leads; acting", "name", e.Name, "key", t.key, "ttl_s", e.seconds())
	lead(lctx)
	e.mu.Lock()
	e.term = nil
	e.mu.Unlock()
	// Revoked now (ctx may be over: the session's own Close would not
	// reach etcd), so that a standby takes over without waiting out the
	// lease.
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
	e.Client.Revoke(rctx, t.lease)
	rcancel()
	if ctx.Err() == nil {
		e.Log.Warn("leader: leadership lost; standing by", "name", e.Name)
	}
	return nil
}

// Fence is the store's fence: the leader key and its creation revision
// while this controller leads.
func (e *Elector) Fence() (string, int64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.term == nil || e.term.ctx.Err() != nil {
		return "", 0, false
	}
	return e.term.key, e.term.rev, true
}

// Leading reports whether this controller leads (as far as it knows:
// writes are fenced by etcd itself).
func (e *Elector) Leading() bool {
	_, _, ok := e.Fence()
	return ok
}

// Check confirms with etcd, just before an act that must not happen
// twice (a config PUT to a node), that this controller still leads and
// that its lease has at least half its TTL left: a standby cannot take
// over before that half has passed, so the act is done by the one
// leader. (A pause of more than TTL/2 between Check and the act itself
// is the limit of this fence.)
func (e *Elector) Check(ctx context.Context) error {
	e.mu.Lock()
	t := e.term
	e.mu.Unlock()
	if t == nil || t.ctx.Err() != nil {
		return ErrNotLeading
	}
	return e.check(ctx, t)
}

func (e *Elector) check(ctx context.Context, t *term) error {
	half := time.Duration(e.seconds()) * time.Second / 2
	ctx, cancel := context.WithTimeout(ctx, half)
	defer cancel()
	resp, err := e.Client.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(t.key), "=", t.rev)).Commit()
	if err != nil {
		return fmt.Errorf("leader check: %w", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: the election key is gone", ErrNotLeading)
	}
	ttl, err := e.Client.TimeToLive(ctx, t.lease)
	if err != nil {
		return fmt.Errorf("leader check: %w", err)
	}
	if left := time.Duration(ttl.TTL) * time.Second; left < half {
		return fmt.Errorf("%w: the lease has %s left", ErrNotLeading, left)
	}
	return nil
}

// Leader returns the name of the controller that leads now ("" when
// none does).
func (e *Elector) Leader(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := e.Client.Get(ctx, e.Prefix+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", err
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// Self is this controller's name.
func (e *Elector) Self() string { return e.Name }
