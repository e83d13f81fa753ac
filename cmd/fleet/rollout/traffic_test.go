package rollout

import (
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
)

// The servfail and qps gates against the node's own baseline: no
// baseline or no measurement is inconclusive, never a pass.
func TestTrafficGates(t *testing.T) {
	rate := func(qps float64, responses, servfails uint64) *live.Rate {
		return &live.Rate{Window: 10, QPS: qps, Responses: responses, Servfails: servfails}
	}
	cases := []struct {
		name              string
		baseline, current *live.Rate
		servfail, qpsGate string
	}{
		{"no baseline", nil, rate(100, 1000, 0), Inconclusive, Inconclusive},
		{"not measured yet", rate(100, 1000, 0), nil, Inconclusive, Inconclusive},
		{"as before", rate(100, 1000, 10), rate(95, 950, 9), Pass, Pass},
		{"servfails up", rate(100, 1000, 10), rate(100, 1000, 80), Fail, Pass},
		{"a few servfails from none", rate(100, 1000, 0), rate(100, 1000, 2), Pass, Pass},
		{"servfails from none", rate(100, 1000, 0), rate(100, 1000, 30), Fail, Pass},
		{"traffic halved", rate(100, 1000, 0), rate(40, 400, 0), Pass, Fail},
		{"idle before", rate(0.2, 2, 0), rate(0, 0, 0), Pass, Pass},
	}
	for _, c := range cases {
		in := gateInput{baseline: c.baseline, current: c.current}
		if r := gateServfail(in); r.Outcome != c.servfail {
			t.Errorf("%s: servfail gate %s (%s), want %s", c.name, r.Outcome, r.Detail, c.servfail)
		}
		if r := gateQPS(in); r.Outcome != c.qpsGate {
			t.Errorf("%s: qps gate %s (%s), want %s", c.name, r.Outcome, r.Detail, c.qpsGate)
		}
	}
}

// A node that restarted between two samples has no rate (its counters
// went down), and neither do missing samples.
func TestRateBetween(t *testing.T) {
	t0 := time.Now()
	a := &live.Traffic{At: t0, Responses: 100, Servfails: 1}
	b := &live.Traffic{At: t0.Add(2 * time.Second), Responses: 300, Servfails: 5}
	r, ok := live.RateBetween(a, b)
	if !ok || r.QPS != 100 || r.Servfails != 4 || r.Responses != 200 {
		t.Fatalf("rate %+v %v", r, ok)
	}
	if _, ok := live.RateBetween(b, &live.Traffic{At: t0.Add(3 * time.Second), Responses: 5}); ok {
		t.Error("a restart (counters down) gave a rate")
	}
	if _, ok := live.RateBetween(nil, b); ok {
		t.Error("a missing sample gave a rate")
	}
}
