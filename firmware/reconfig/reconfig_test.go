package reconfig

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

// runtime is a node runtime that is healthy unless its node name says
// "sick", and fails to start when it says "broken"; it records its runs.
type runtime struct {
	cfg   *config.Config
	ready func()
	log   *[]string
	mu    *sync.Mutex
}

func (r runtime) Run(ctx context.Context) error {
	r.mu.Lock()
	*r.log = append(*r.log, "start "+r.cfg.Node.Name)
	r.mu.Unlock()
	if r.cfg.Node.Name == "broken" {
		return errors.New("cannot bind")
	}
	r.ready()
	<-ctx.Done()
	r.mu.Lock()
	*r.log = append(*r.log, "stop "+r.cfg.Node.Name)
	r.mu.Unlock()
	return nil
}

func (r runtime) Healthy() (bool, string) {
	return r.cfg.Node.Name != "sick", "sick by name"
}

func doc(name, dir string) []byte {
	return []byte("node:\n  name: " + name + "\ndata_dir: " + dir + "\n")
}

// TestSupervisor: a good document replaces the running one (generation
// 1, kept across a restart of the supervisor); one that fails to start or
// never becomes healthy is rolled back and the old one runs again; a bad
// document, or one moving data_dir, is refused with nothing changed.
func TestSupervisor(t *testing.T) {
	dir := t.TempDir()
	var log []string
	var mu sync.Mutex
	newSup := func(d []byte) *Supervisor {
		cfg, err := config.Parse(d)
		if err != nil {
			t.Fatal(err)
		}
		return New(Options{Document: d, Config: cfg, HealthyWithin: 500 * time.Millisecond, New: func(c *config.Config, ready func()) Runtime {
			return runtime{cfg: c, ready: ready, log: &log, mu: &mu}
		}})
	}
	s := newSup(doc("one", dir))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	wait := func(gen uint64) Running {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			r := s.Running()
			if r.Last != nil && r.Last.Generation == gen && r.Last.State != StateApplying {
				return r
			}
		}
		t.Fatalf("attempt %d did not finish: %+v", gen, s.Running().Last)
		return Running{}
	}
	if _, err := s.Apply([]byte("node:\n  colour: red\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad document: %v", err)
	}
	if _, err := s.Apply(doc("two", dir+"/elsewhere")); err == nil || !strings.Contains(err.Error(), "data_dir") {
		t.Fatalf("moved data_dir: %v", err)
	}
	a, err := s.Apply(doc("two", dir))
	if err != nil {
		t.Fatal(err)
	}
	if r := wait(a.Generation); r.Last.State != StateApplied || r.Generation != 1 || r.Hash != Hash(doc("two", dir)) {
		t.Fatalf("good: %+v", r)
	}
	for _, bad := range []string{"sick", "broken"} {
		a, err := s.Apply(doc(bad, dir))
		if err != nil {
			t.Fatal(err)
		}
		r := wait(a.Generation)
		if r.Last.State != StateRolledBack || r.Generation != 1 || r.Hash != Hash(doc("two", dir)) {
			t.Fatalf("%s: %+v", bad, r)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := strings.Join(log, ", ")
	mu.Unlock()
	if want := "start one, stop one, start two, stop two, start sick, stop sick, start two, stop two, start broken, start two, stop two"; got != want {
		t.Fatalf("runs:\n got %s\nwant %s", got, want)
	}
	if s2 := newSup(doc("two", dir)); s2.Running().Generation != 1 {
		t.Fatalf("generation after a restart: %d", s2.Running().Generation)
	}
}
