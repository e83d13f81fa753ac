package rollout

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/cmd/fleet/store"
)

// TestWaveCatchment: each wave is measured once before and once after
// (a restarted controller does not measure again), and a failed
// measurement is recorded without halting anything.
func TestWaveCatchment(t *testing.T) {
	kv, err := store.OpenBolt(filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	var labels []string
	r := &Runner{KV: kv, Catchment: func(ctx context.Context, label string) (string, error) {
		labels = append(labels, label)
		if strings.HasSuffix(label, "after") {
			return "c2", errors.New("no node could take part")
		}
		return "c1", nil
	}}
	r.init()
	ro := &Rollout{ID: "r1", State: Running, Waves: []Wave{{Name: "canary"}, {Name: "wave 1"}}}
	r.measureCatchment(context.Background(), ro, "before")
	r.measureCatchment(context.Background(), ro, "before") // resumed: not again
	r.measureCatchment(context.Background(), ro, "after")
	if want := "rollout r1 wave canary before|rollout r1 wave canary after"; strings.Join(labels, "|") != want {
		t.Fatalf("measured %q, want %q", labels, want)
	}
	if len(ro.Catchment) != 2 || ro.Catchment[0].ID != "c1" || ro.Catchment[1].Error == "" || ro.State != Running {
		t.Fatalf("refs %+v, state %s", ro.Catchment, ro.State)
	}
	var saved Rollout
	if err := store.GetJSON(kv, Bucket, "r1", &saved); err != nil || len(saved.Catchment) != 2 {
		t.Fatalf("saved %+v %v", saved.Catchment, err)
	}
}
