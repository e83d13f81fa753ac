package zone

import (
	"errors"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const goodZone = `; a comment line
$TTL 1h
$ORIGIN Example.COM.
@	IN SOA ns1 hostmaster (
		2024010101 ; serial
		7200 3600 1209600 300 )
	IN NS ns1
	IN NS ns2.example.net.
ns1	IN A 192.0.2.1
	IN AAAA 2001:db8::1
www 300	IN CNAME @

mail	MX 10 mx.example.net.
txt	TXT "semi;colon" "paren(" "quote\"d"
a\.b	A 192.0.2.2
\065bc	A 192.0.2.3
unk	TYPE65534 \# 3 abcdef
sub	NS ns.sub
ns.sub	A 192.0.2.4
`

func TestParseGood(t *testing.T) {
	z, err := Parse(strings.NewReader(goodZone), "\\069XAMPLE.com", "good.zone", "")
	if err != nil {
		t.Fatal(err)
	}
	if z.Origin != "example.com." {
		t.Errorf("origin %q, want canonical example.com.", z.Origin)
	}
	if z.Serial() != 2024010101 {
		t.Errorf("serial %d", z.Serial())
	}
	// Each record's line is where its entry starts, also for the
	// multi-line SOA and records after blank and comment lines.
	want := []struct {
		line int
		typ  uint16
		name string
		ttl  uint32
	}{
		{4, dns.TypeSOA, "Example.COM.", 3600},
		{7, dns.TypeNS, "Example.COM.", 3600},
		{8, dns.TypeNS, "Example.COM.", 3600},
		{9, dns.TypeA, "ns1.Example.COM.", 3600},
		{10, dns.TypeAAAA, "ns1.Example.COM.", 3600},
		{11, dns.TypeCNAME, "www.Example.COM.", 300},
		{13, dns.TypeMX, "mail.Example.COM.", 3600},
		{14, dns.TypeTXT, "txt.Example.COM.", 3600},
		{15, dns.TypeA, `a\.b.Example.COM.`, 3600},
		{16, dns.TypeA, `\065bc.Example.COM.`, 3600},
		{17, 65534, "unk.Example.COM.", 3600},
		{18, dns.TypeNS, "sub.Example.COM.", 3600},
		{19, dns.TypeA, "ns.sub.Example.COM.", 3600},
	}
	if len(z.Records) != len(want) || len(z.Pos) != len(want) {
		t.Fatalf("got %d records, %d positions, want %d", len(z.Records), len(z.Pos), len(want))
	}
	for i, w := range want {
		h := z.Records[i].Header()
		if z.Pos[i] != (Position{"good.zone", w.line}) || h.Rrtype != w.typ || h.Name != w.name || h.Ttl != w.ttl {
			t.Errorf("record %d: %v at %v, want %s %s ttl %d at line %d", i, z.Records[i], z.Pos[i], w.name, typ(w.typ), w.ttl, w.line)
		}
	}
	// "a\.b" is one label, not two.
	if n := dns.CountLabel(z.Records[8].Header().Name); n != 3 {
		t.Errorf("a\\.b.example.com. has %d labels, want 3", n)
	}
	if txt := z.Records[7].(*dns.TXT).Txt; len(txt) != 3 || txt[0] != "semi;colon" || txt[2] != `quote\"d` {
		t.Errorf("TXT parsed as %q", txt)
	}
}

func TestUnknownTypeRoundTrip(t *testing.T) {
	z := mustParse(t, soaNS+"x TYPE65534 \\# 3 abcdef\n")
	rr := z.Records[len(z.Records)-1]
	u, ok := rr.(*dns.RFC3597)
	if !ok || u.Rdata != "abcdef" || u.Hdr.Rrtype != 65534 {
		t.Fatalf("got %T %v", rr, rr)
	}
	again, err := dns.NewRR(rr.String())
	if err != nil {
		t.Fatal(err)
	}
	if !dns.IsDuplicate(rr, again) || again.Header().Ttl != rr.Header().Ttl {
		t.Errorf("%v re-parsed as %v", rr, again)
	}
	// RFC 3597 syntax for a known type yields that type.
	z = mustParse(t, soaNS+"y TYPE1 \\# 4 c0000201\n")
	if a, ok := z.Records[len(z.Records)-1].(*dns.A); !ok || a.A.String() != "192.0.2.1" {
		t.Errorf("TYPE1 parsed as %v", z.Records[len(z.Records)-1])
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"syntax", soaNS + "www A 192.0.2\n", `z.zone:4: bad A A: "192.0.2"`},
		{"missing TTL", "@ IN SOA ns hm 1 2 3 4 5\n", "z.zone:1: example.com. SOA: no TTL"},
		{"unknown type", soaNS + "www FOO bar\n", "z.zone:4: "},
		{"bad generic data", soaNS + "loc TYPE29 \\# 3 000001\n", `z.zone:4: loc.example.com. LOC: the \# data is not valid LOC data`},
		{"empty rdata", soaNS + "mx MX\n", `z.zone:4: mx.example.com. MX: record has no data`},
		{"include without dir", soaNS + "$INCLUDE other.zone\n", `z.zone:4: $INCLUDE "other.zone": not allowed here`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.text), "example.com.", "z.zone", "")
			var l ErrorList
			if !errors.As(err, &l) {
				t.Fatalf("got %v (%T), want an ErrorList", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), includeMarker) {
				t.Errorf("error shows the internal marker: %q", err)
			}
		})
	}
}

func TestDuplicatesMerged(t *testing.T) {
	z := mustParse(t, soaNS+"www A 192.0.2.1\nWWW 60 A 192.0.2.1\nwww A 192.0.2.2\n")
	n := 0
	for i, rr := range z.Records {
		if rr.Header().Rrtype == dns.TypeA {
			n++
			if n == 1 && (rr.Header().Ttl != 3600 || z.Pos[i].Line != 4) {
				t.Errorf("kept %v from line %d, want the first one (line 4)", rr, z.Pos[i].Line)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d A records after merging, want 2", n)
	}
}

func TestTTLDirective(t *testing.T) {
	z := mustParse(t, "$TTL 600\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns 30 A 192.0.2.1\nx A 192.0.2.2\n$TTL 1d\ny A 192.0.2.3\n")
	ttls := map[string]uint32{}
	for _, rr := range z.Records {
		ttls[rr.Header().Name] = rr.Header().Ttl
	}
	if ttls["ns.example.com."] != 30 || ttls["x.example.com."] != 600 || ttls["y.example.com."] != 86400 {
		t.Errorf("TTLs %v", ttls)
	}
}

// soaNS is a minimal valid zone for example.com (3 lines).
const soaNS = "$TTL 3600\n@ SOA ns hm 1 7200 3600 1209600 300\n@ NS ns.example.net.\n"

func mustParse(t *testing.T, text string) *Zone {
	t.Helper()
	z, err := Parse(strings.NewReader(text), "example.com.", "z.zone", "")
	if err != nil {
		t.Fatalf("%v\nzone:\n%s", err, text)
	}
	return z
}
