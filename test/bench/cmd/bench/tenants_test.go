package main

import (
	"testing"

	"github.com/shoestring-dns/shoestring/test/bench"
)

func TestPairedShares(t *testing.T) {
	runs := func(qps ...float64) []bench.ManyRun {
		var rs []bench.ManyRun
		for _, q := range qps {
			var r bench.ManyRun
			r.Perf.QPS = q
			rs = append(rs, r)
		}
		return rs
	}
	node := &tenantRow{runs: runs(123210, 118322, 90583)}
	one := &tenantRow{runs: runs(119739, 90056, 82242), ratioTo: node}
	if got, want := pairedShares(one), "97.2%, 76.1%, 90.8% (median 90.8%)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := pairedShares(&tenantRow{runs: runs(1, 2)}); got != "" {
		t.Errorf("without a node row: %q", got)
	}
	if got := pairedShares(&tenantRow{runs: runs(1, 2), ratioTo: node}); got != "" {
		t.Errorf("runs that do not pair: %q", got)
	}
}
