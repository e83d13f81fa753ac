package bench

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestAmpCount(t *testing.T) {
	var c AmpCount
	if c.Ratio() != 0 || c.WireRatio() != 0 || c.PacketRatio() != 0 {
		t.Fatalf("empty count: ratios %v %v %v, want 0", c.Ratio(), c.WireRatio(), c.PacketRatio())
	}
	for range 4 {
		c.Query(50)
	}
	c.Response(500, false)
	c.Response(30, true)
	if c.Queries != 4 || c.Responses != 2 || c.TC != 1 || c.BytesIn != 200 || c.BytesOut != 530 {
		t.Fatalf("count %+v", c)
	}
	if got := c.Ratio(); got != 2.65 {
		t.Errorf("Ratio %v, want 2.65", got)
	}
	if got, want := c.WireRatio(), float64(530+2*28)/float64(200+4*28); got != want {
		t.Errorf("WireRatio %v, want %v", got, want)
	}
	if got := c.PacketRatio(); got != 0.5 {
		t.Errorf("PacketRatio %v, want 0.5", got)
	}
}

func TestPrintAmp(t *testing.T) {
	rs := []AmpResult{
		{Server: "shoestring", Class: AmpLarge, AmpCount: AmpCount{Queries: 10, Responses: 10, BytesIn: 100, BytesOut: 1000}},
		{Server: "shoestring", Class: AmpLarge, RRL: true, AmpCount: AmpCount{Queries: 10, Responses: 5, TC: 4, BytesIn: 100, BytesOut: 50}},
		{Server: "nsd", Class: AmpLarge, AmpCount: AmpCount{Queries: 10, Responses: 10, BytesIn: 100, BytesOut: 1000}},
		{Server: "nsd", Class: AmpLarge, RRL: true, AmpCount: AmpCount{Queries: 10, Responses: 5, TC: 4, BytesIn: 100, BytesOut: 100}},
	}
	var b strings.Builder
	PrintAmp(&b, rs, "shoestring", "nsd")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want header and 4\n%s", len(lines), b.String())
	}
	// server class(2 words) RRL queries responses TC in out resp/q out/in wire vs
	for i, want := range [][2]string{{"10.00", "1.00x"}, {"0.50", "0.50x"}, {"10.00", ""}, {"1.00", ""}} {
		f := strings.Fields(lines[i+1])
		vs := ""
		if len(f) == 13 {
			vs = f[12]
		}
		if len(f) < 12 || f[10] != want[0] || vs != want[1] {
			t.Errorf("line %d %q: want out/in %s and %q", i+1, lines[i+1], want[0], want[1])
		}
	}
}

// TestAmpZone: the zone parses, holds the large RRset and the wildcard,
// and every class asks for a name in it.
func TestAmpZone(t *testing.T) {
	var b strings.Builder
	if err := WriteAmpZone(&b, Origin); err != nil {
		t.Fatal(err)
	}
	zp := dns.NewZoneParser(strings.NewReader(b.String()), "", "")
	txt := 0
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if rr.Header().Rrtype == dns.TypeTXT && rr.Header().Name == AmpLargeName(Origin) {
			txt++
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	if txt != AmpTXT {
		t.Errorf("%d TXT at %s, want %d", txt, AmpLargeName(Origin), AmpTXT)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, c := range AmpClasses() {
		name, _ := c.Question(Origin, rng)
		if !dns.IsSubDomain(Origin, name) {
			t.Errorf("%s: %s is outside %s", c, name, Origin)
		}
	}
}
