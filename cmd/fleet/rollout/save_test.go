package rollout

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/shoestring-dns/shoestring/cmd/fleet/store"
)

// TestSaveOverNewer: a copy of a rollout saved over a newer version (a
// step another controller, or another path, recorded since it was read)
// is refused, and stops the drive of that copy.
func TestSaveOverNewer(t *testing.T) {
	kv, err := store.OpenBolt(filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	r := &Runner{KV: kv, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r.init()
	ro := &Rollout{ID: "g-r-1", Group: "g", State: Running, Nodes: []*Node{{Name: "a", State: NodePending}}}
	if err := r.save(ro); err != nil {
		t.Fatal(err)
	}
	if err := r.save(&Rollout{ID: "g-r-1"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second rollout of the same id: %v, want ErrConflict", err)
	}
	other, err := r.Get(ro.ID)
	if err != nil {
		t.Fatal(err)
	}
	other.Nodes[0].State = NodeApplying
	if err := r.save(other); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancelCause(context.Background())
	ro.stop = stop
	ro.Nodes[0].State = NodeApplying
	if err := r.save(ro); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a stale copy's save: %v, want ErrConflict", err)
	}
	if !errors.Is(context.Cause(ctx), store.ErrConflict) {
		t.Fatalf("the stale copy's drive goes on: %v", context.Cause(ctx))
	}
	got, _ := r.Get(ro.ID)
	if got.Nodes[0].State != NodeApplying || got.Updated != other.Updated {
		t.Fatalf("stored: %+v, want the other copy's", got)
	}
}
