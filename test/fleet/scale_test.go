package fleet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
	"github.com/shoestring-dns/shoestring/cmd/fleet/serial"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/reconfig"
	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/zone"
	"github.com/shoestring-dns/shoestring/firmware/zones"
)

// A lightweight node: the real API handlers (package api) over fixed
// state, so that a thousand fit in one process.
type fakeNode struct{ name string }

func (f fakeNode) Status() api.Status {
	return api.Status{Name: f.name, Ready: true, Queries: uint64(time.Now().UnixNano() / 1e6)}
}
func (f fakeNode) Healthy() (bool, string) { return true, "answering" }
func (f fakeNode) Health() health.Report {
	return health.Sources{Ready: func() bool { return true }}.Report()
}
func (f fakeNode) List() ([]zones.Info, error) {
	return []zones.Info{{Info: store.Info{Origin: "a.test.", Serial: 7}, ServedSerial: 7, Serving: true}, {Info: store.Info{Origin: "b.test.", Serial: 9}, ServedSerial: 9, Serving: true}}, nil
}
func (f fakeNode) Get(string) (zones.Info, *zone.Zone, error) {
	return zones.Info{}, nil, zones.ErrNotFound
}
func (f fakeNode) PutText(string, []byte, string) (zones.Info, error) {
	return zones.Info{}, fmt.Errorf("read-only")
}
func (f fakeNode) Delete(string) error { return fmt.Errorf("read-only") }
func (f fakeNode) Running() reconfig.Running {
	return reconfig.Running{Generation: 3, Hash: strings.Repeat("ab", 32), Document: "node: {name: " + f.name + "}\n"}
}
func (f fakeNode) Apply([]byte) (reconfig.Attempt, error) {
	return reconfig.Attempt{}, fmt.Errorf("read-only")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFleet1000 is the scale check: the controller's poller over
// 1,000 node APIs (in-process), and planning a rollout of 1,000 nodes
// with the invariant. It reports the time and CPU of a poll round (the
// node side included: they share the process), the poller's heap, and
// the plan time.
//
//	go test -run '^$' -bench Fleet1000 -benchtime 5x ./test/fleet/
func BenchmarkFleet1000(b *testing.B) {
	const n = 1000
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var nodes []inventory.Node
	regions := []string{"eu", "us", "ap", "sa", "af"}
	for i := 0; i < n; i++ {
		f := fakeNode{name: fmt.Sprintf("n%04d", i)}
		mux := api.Handler(f, f, log)
		api.ManagementRoutes(mux, &api.Sources{Name: f.name, Version: "v1.2.3", Health: f.Health}, nil, log)
		api.ConfigRoutes(mux, f, log)
		srv := httptest.NewServer(mux)
		b.Cleanup(srv.Close)
		nodes = append(nodes, inventory.Node{Name: f.name, API: strings.TrimPrefix(srv.URL, "http://"), Region: regions[i%len(regions)],
			Site: fmt.Sprintf("site%03d", i/4), Prefixes: []string{fmt.Sprintf("192.0.%d.0/24", i%5)}})
	}
	p := &live.Poller{Nodes: func() ([]inventory.Node, error) { return nodes, nil }, Parallel: 64}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p.Round(context.Background()) // warm: connections, history
	b.Run("poll-round", func(b *testing.B) {
		cpu0, t0 := cpuTime(), time.Now()
		for i := 0; i < b.N; i++ {
			p.Round(context.Background())
		}
		b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/round")
		b.ReportMetric(float64(time.Since(t0).Milliseconds())/float64(b.N), "wall-ms/round")
	})
	if got := len(p.States()); got != n {
		b.Fatalf("%d nodes polled", got)
	}
	for _, st := range p.States() {
		if !st.Reached || st.Config == nil || len(st.Zones) != 2 {
			b.Fatalf("%s: %+v", st.Name, st)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.Logf("heap in use with 1,000 nodes' state (and their in-process APIs): %.1f MiB (%.1f MiB before the first poll)", float64(after.HeapInuse)/(1<<20), float64(before.HeapInuse)/(1<<20))
	b.Run("plan", func(b *testing.B) {
		states := p.States()
		for i := 0; i < b.N; i++ {
			waves := rollout.Plan(fmt.Sprintf("rel-%d", i), nodes, 4)
			out := map[string]bool{}
			for _, name := range waves[1] {
				for _, nd := range nodes {
					if nd.Name == name {
						if ok, _ := rollout.MayTakeOut(nd, nodes, out, states, 2, 0.5); ok {
							out[name] = true
						}
					}
				}
			}
		}
	})
	b.Run("serial-check", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			serial.Check(p.States(), serial.QuerySOA)
		}
	})
}
