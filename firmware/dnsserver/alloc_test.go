package dnsserver

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPLoopDoesNotAllocate serves queries over a real socket and counts
// heap allocations in the whole process: the serving loop must not
// allocate per query or per batch, or a busy node's heap (and RSS) creeps
// up to twice its zones between collections.
func TestUDPLoopDoesNotAllocate(t *testing.T) {
	_, addr := startTestServer(t, parseTestZone(t, "example.com.", testZone))
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var queries [][]byte
	for _, name := range []string{"example.com.", "x.wild.example.com.", "nope.example.com."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.SetEdns0(1232, false)
		b, _ := m.Pack()
		queries = append(queries, b)
	}
	buf := make([]byte, 2048)
	exchange := func(n int) {
		for i := 0; i < n; i++ {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(queries[i%len(queries)]); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	exchange(200) // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 3000
	exchange(n)
	runtime.ReadMemStats(&after)
	perQuery := float64(after.Mallocs-before.Mallocs) / n
	t.Logf("%.3f allocations per query (whole process, client included)", perQuery)
	if perQuery > 0.05 {
		t.Fatalf("%.3f allocations per query; the serving loop must not allocate", perQuery)
	}
}
