package dnsserver

import (
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// TestQueryMetricsCount sends known queries over UDP and TCP and checks
// each counter — by zone and rcode, by protocol and type, latency — moved
// by exactly that much, including across a zone update (counters belong to
// the zone's name, not to a snapshot) and a delete.
func TestQueryMetricsCount(t *testing.T) {
	s, addr := startTestServer(t, parseTestZone(t, "example.com.", testZone))
	ask := func(name string, qtype uint16, tcp bool) {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		c := &dns.Client{Timeout: 2 * time.Second}
		if tcp {
			c.Net = "tcp"
		}
		if _, _, err := c.Exchange(m, addr); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		ask("example.com.", dns.TypeA, false) // fast path
	}
	for i := 0; i < 3; i++ {
		ask("nope.example.com.", dns.TypeMX, false) // NXDOMAIN
	}
	ask("www.example.com.", dns.TypeA, false)  // CNAME: slow path
	ask("example.com.", dns.TypeCAA, true)     // NODATA over TCP; CAA is type 257
	ask("elsewhere.org.", dns.TypeAAAA, false) // REFUSED, no zone

	// The same zone again, a new version: its counters go on.
	s.Put(mustBuild(t, parseTestZone(t, "example.com.", testZone)))
	ask("example.com.", dns.TypeA, false)

	m := s.QueryMetrics()
	want := map[string]uint64{
		"example.com./udp/NOERROR":  5 + 1 + 1,
		"example.com./udp/NXDOMAIN": 3,
		"example.com./tcp/NOERROR":  1,
		"/udp/REFUSED":              1,
	}
	got := map[string]uint64{}
	for zone, byProto := range m.Zones {
		for proto, byRcode := range byProto {
			for rc, v := range byRcode {
				got[zone+"/"+proto+"/"+rc] = v
			}
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("unexpected series: %v", got)
	}
	for _, x := range []struct {
		proto, qtype string
		n            uint64
	}{{"udp", "A", 7}, {"udp", "MX", 3}, {"udp", "AAAA", 1}, {"tcp", "CAA", 1}} {
		if v := m.ByType[x.proto][x.qtype]; v != x.n {
			t.Errorf("%s %s queries = %d, want %d", x.proto, x.qtype, v, x.n)
		}
	}
	if h := m.Latency["udp"]; h.Count != 11 || h.Sum <= 0 || h.Buckets[len(h.Buckets)-1] > h.Count {
		t.Errorf("udp latency histogram %+v, want 11 answers", h)
	}
	if h := m.Latency["tcp"]; h.Count != 1 {
		t.Errorf("tcp latency histogram %+v, want 1 answer", h)
	}
	if m.Serials["example.com."] != 1 {
		t.Errorf("serials %v", m.Serials)
	}

	// A deleted zone's counters go; REFUSED ones for it count under "".
	s.Delete("example.com.")
	ask("example.com.", dns.TypeA, false)
	m = s.QueryMetrics()
	if _, ok := m.Zones["example.com."]; ok {
		t.Errorf("deleted zone still has counters: %v", m.Zones)
	}
	if v := m.Zones[""]["udp"]["REFUSED"]; v != 2 {
		t.Errorf("REFUSED outside zones = %d, want 2", v)
	}
}

func mustBuild(t *testing.T, z *zone.Zone) *Zone {
	t.Helper()
	snap, err := Build(z)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestLatencyBuckets pins the bucket boundaries: each bound is inclusive,
// as Prometheus' "le" says.
func TestLatencyBuckets(t *testing.T) {
	bounds := LatencyBounds()
	for _, x := range []struct {
		ns     int64
		bucket int
	}{{0, 0}, {1, 0}, {512, 0}, {513, 1}, {1024, 1}, {1025, 2}, {1 << 20, 11}, {1<<26 + 1, nLat - 1}, {1 << 40, nLat - 1}} {
		if b := latencyBucket(x.ns); b != x.bucket {
			t.Errorf("%d ns in bucket %d, want %d", x.ns, b, x.bucket)
		}
		if x.bucket < len(bounds) && float64(x.ns)/1e9 > bounds[x.bucket] {
			t.Errorf("%d ns above its bucket's bound %g", x.ns, bounds[x.bucket])
		}
	}
}

// countingTap counts exchanges without keeping them: the tap a test can
// set to see the answer path call it, and allocate nothing doing so.
type countingTap struct{ n atomic.Uint64 }

func (c *countingTap) Tap(q, r []byte, client netip.AddrPort, tcp bool, at time.Time) {
	if len(q) > 0 && len(r) > 0 && client.IsValid() {
		c.n.Add(1)
	}
}

// TestUDPLoopDoesNotAllocateWithTap: counting and tapping keep the
// serving loop free of allocations.
func TestUDPLoopDoesNotAllocateWithTap(t *testing.T) {
	s, addr := startTestServer(t, parseTestZone(t, "example.com.", testZone))
	tap := &countingTap{}
	s.SetTap(tap)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("x.wild.example.com.", dns.TypeA)
	q, _ := m.Pack()
	buf := make([]byte, 2048)
	exchange := func(n int) {
		for i := 0; i < n; i++ {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(q); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	exchange(200)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 3000
	exchange(n)
	runtime.ReadMemStats(&after)
	if per := float64(after.Mallocs-before.Mallocs) / n; per > 0.05 {
		t.Fatalf("%.3f allocations per query with metrics and a tap", per)
	}
	if got := tap.n.Load(); got != n+200 {
		t.Fatalf("tap saw %d exchanges, want %d", got, n+200)
	}
}

// BenchmarkMetricsCost is what the metrics add to each query on the UDP
// path: parse and answer (as BenchmarkHandle), then the same plus counting
// and, once per batch of 32, a clock read and a latency observation.
func BenchmarkMetricsCost(b *testing.B) {
	snap, err := Build(parseTestZone(b, "example.com.", testZone))
	if err != nil {
		b.Fatal(err)
	}
	s := New(Config{Identity: "bench"})
	s.Replace([]*Zone{snap})
	sh := s.metrics.udpShard()
	m := new(dns.Msg)
	m.SetQuestion("x.wild.example.com.", dns.TypeA)
	m.SetEdns0(1232, false)
	wire, _ := m.Pack()
	out := make([]byte, 0, maxMsg)
	var q query
	b.Run("answer", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			parseQuery(wire, &q)
			s.handle(&q, out[:0], false, netip.Addr{})
		}
	})
	b.Run("answer+metrics", func(b *testing.B) {
		received := time.Now()
		for i := 0; i < b.N; i++ {
			if i%batch == 0 {
				received = time.Now()
			}
			parseQuery(wire, &q)
			resp := s.handle(&q, out[:0], false, netip.Addr{})
			sh.count(&q, resp)
			if i%batch == batch-1 {
				sh.observe(time.Since(received), batch)
			}
		}
	})
}
