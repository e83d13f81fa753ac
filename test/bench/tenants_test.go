package bench

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

func TestCPUList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
		out  string
	}{
		{"1", []int{1}, "1"},
		{"0-3", []int{0, 1, 2, 3}, "0-3"},
		{"4,2-3,7", []int{2, 3, 4, 7}, "2-4,7"},
		{"1,1,0", []int{0, 1}, "0-1"},
	} {
		got, err := ParseCPUList(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		if s := FormatCPUList(got); s != c.out {
			t.Errorf("FormatCPUList(%v) = %q, want %q", got, s, c.out)
		}
	}
	for _, bad := range []string{"", "a", "3-1", "1,", "-1", "1-x"} {
		if got, err := ParseCPUList(bad); err == nil {
			t.Errorf("ParseCPUList(%q) = %v, want an error", bad, got)
		}
	}
}

func TestTenantLayout(t *testing.T) {
	// This machine's layout: servers on 1, dnsperf on 0; two tenants
	// share core 1.
	l, err := NewTenantLayout(2, "1", "0", 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.Share(0), []int{1}) || !slices.Equal(l.Share(1), []int{1}) || !l.SharedCores() || l.Client(1) != 0 {
		t.Errorf("2 tenants on core 1: shares %v %v, shared %v, client %d", l.Share(0), l.Share(1), l.SharedCores(), l.Client(1))
	}
	// A bigger box: 8 server cores among 3 tenants, 3+3+2, contiguous.
	l, err = NewTenantLayout(3, "4-11", "0-3", 16)
	if err != nil {
		t.Fatal(err)
	}
	var all []int
	for i, want := range [][]int{{4, 5, 6}, {7, 8, 9}, {10, 11}} {
		if got := l.Share(i); !slices.Equal(got, want) {
			t.Errorf("share %d = %v, want %v", i, got, want)
		}
		all = append(all, l.Share(i)...)
	}
	if !slices.Equal(all, l.Servers) || l.SharedCores() || l.Client(5) != 1 {
		t.Errorf("shares %v do not cover %v exactly, or shared/client wrong", all, l.Servers)
	}
	if d := l.Describe(); !strings.Contains(d, "t2:7-9") || !strings.Contains(d, "dnsperf on cores 0-3") {
		t.Errorf("Describe: %s", d)
	}
	for _, c := range []struct {
		n                int
		servers, clients string
		want             string
	}{
		{0, "1", "0", "at least 1"},
		{2, "0-1", "1", "both"},
		{2, "2", "0", "cores 0-1"},
		{2, "1", "", "tenant-client-cores"},
	} {
		if _, err := NewTenantLayout(c.n, c.servers, c.clients, 2); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewTenantLayout(%d, %q, %q): %v, want an error with %q", c.n, c.servers, c.clients, err, c.want)
		}
	}
}

// The host config the bench writes is one the firmware accepts, with
// each tenant on its own address and cpuset.
func TestHostConfig(t *testing.T) {
	l, err := NewTenantLayout(2, "2-5", "0-1", 8)
	if err != nil {
		t.Fatal(err)
	}
	ts := l.BenchTenants(2)
	var b bytes.Buffer
	if err := WriteHostConfig(&b, HostSpec{Data: "/tmp/d", Management: "127.0.0.1:8053", Cgroup: "shoestring-bench-1-2",
		Origin: Origin, ZoneFile: "/tmp/z", Tenants: ts}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(cfg.Tenants.List) != 2 {
		t.Fatalf("%d tenants:\n%s", len(cfg.Tenants.List), b.String())
	}
	for i, want := range []struct{ addr, cpuset string }{{"10.53.1.53", "2-3"}, {"10.53.2.53", "4-5"}} {
		tc := cfg.Tenants.List[i]
		if len(tc.Addresses) != 1 || tc.Addresses[0] != want.addr || tc.Cpuset != want.cpuset || len(tc.Zones) != 1 || tc.Zones[0].File != "/tmp/z" {
			t.Errorf("tenant %d: %+v, want %s on %s", i, tc, want.addr, want.cpuset)
		}
	}
	b.Reset()
	if err := WriteNodeConfig(&b, "/tmp/n", "127.0.0.1:53", Origin, "/tmp/z"); err != nil {
		t.Fatal(err)
	}
	if n, err := config.Parse(b.Bytes()); err != nil || len(n.Zones) != 1 || len(n.DNS.Listen) != 1 {
		t.Errorf("node config: %v\n%s", err, b.String())
	}
}

func TestSumPerf(t *testing.T) {
	s := SumPerf([]PerfResult{
		{Sent: 10, Completed: 10, QPS: 100, RunTime: 2, ResponseSize: 60, AvgLatency: 0.001, Rcodes: map[string]int64{"NOERROR": 8, "NXDOMAIN": 2}},
		{Sent: 30, Completed: 30, QPS: 300, RunTime: 2.1, ResponseSize: 100, AvgLatency: 0.003, Rcodes: map[string]int64{"NOERROR": 30}},
	})
	if s.Sent != 40 || s.Completed != 40 || s.QPS != 400 || s.RunTime != 2.1 || s.ResponseSize != 90 ||
		math.Abs(s.AvgLatency-0.0025) > 1e-9 || s.Rcodes["NOERROR"] != 38 || s.Failed() != 0 {
		t.Errorf("SumPerf: %+v", s)
	}
}
