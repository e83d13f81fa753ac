package dnsserver

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPLoopDoesNotAllocate serves queries over a real socket and counts
// heap allocations in the whole process: the serving loop must not
// allocate per query or per batch, or a busy node's heap (and RSS) creeps
// up to twice its zones between collections.
func TestUDPLoopDoesNotAllocate(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		sign *signOptions // nil: unsigned
	}{
		{"default", Config{}, nil},
		// A signed zone asked with DO: answers with RRSIGs come
		// pre-packed (emitSigned), denials and wildcard answers with
		// their NSEC proofs are packed per query (emitProof), and
		// allocate nothing either.
		{"signed-do", Config{}, &signOptions{}},
		// Nor with NSEC3 proofs: the names asked are hashed on the
		// stack (with a salt and iterations here) and the chain's
		// records copied from the arena. With opt-out, the NODATA at
		// an empty non-terminal with no NSEC3 carries the closest
		// provable encloser proof.
		{"nsec3-do", Config{}, &signOptions{nsec3: true, optOut: true, salt: "AABBCCDD", iterations: 5}},
		// RRL on, no source over its limit, and one source over it.
		{"rrl", Config{RRL: &RRLConfig{ResponsesPerSecond: 1000000, Slip: 2}}, nil},
		{"rrl-limited", Config{RRL: &RRLConfig{ResponsesPerSecond: 1, Slip: 2}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Listen, cfg.Identity, cfg.UDPWorkers = []string{"127.0.0.1:0"}, "test-node", 1
			testUDPLoopAllocs(t, cfg, c.sign)
		})
	}
}

func testUDPLoopAllocs(t *testing.T, cfg Config, sign *signOptions) {
	zn := parseTestZone(t, "example.com.", testZone)
	names := []string{"example.com.", "x.wild.example.com.", "nope.example.com."}
	signed := sign != nil
	if signed {
		zn = signZone(t, zn, *sign)
		// Positive answers (pre-packed with DO), NODATA, NXDOMAIN
		// (below a name that exists, so two NSEC records), a
		// wildcard expansion and a wildcard's NODATA.
		names = []string{"example.com.", "ns1.example.com.", "mail.example.com.", "mail.example.com/AAAA",
			"nope.example.com.", "x.a.b.c.example.com.", "x.wild.example.com.", "x.wild.example.com/TXT"}
		if sign.optOut {
			names = append(names, "optout.example.com.")
		}
	}
	_, addr := startTestServerWith(t, cfg, zn)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var queries [][]byte
	for _, name := range names {
		qtype := dns.TypeA
		if n, t, ok := strings.Cut(name, "/"); ok {
			name, qtype = n+".", dns.StringToType[t]
		}
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.SetEdns0(1232, signed)
		b, _ := m.Pack()
		queries = append(queries, b)
	}
	// Cookie queries: a client cookie only (a server cookie is minted
	// for each), and one with the server cookie that brought back.
	queries = append(queries, cookieQuery(t, "example.com.", "0123456789abcdef"))
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(time.Second))
	c.Write(queries[len(queries)-1])
	got, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:got]); err != nil || replyCookie(r) == "" {
		t.Fatalf("no cookie in the reply: %v", err)
	}
	queries = append(queries, cookieQuery(t, "nope.example.com.", replyCookie(r)))
	limited := cfg.RRL != nil && cfg.RRL.ResponsesPerSecond < 100
	exchange := func(n int) {
		for i := 0; i < n; i++ {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(queries[i%len(queries)]); err != nil {
				t.Fatal(err)
			}
			if limited && i%len(queries) != len(queries)-1 {
				// Rate limited: half the replies are dropped; the
				// query with a valid cookie is always answered, and
				// shows the others were handled.
				continue
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
