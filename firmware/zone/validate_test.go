package zone

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// Each case is a zone body after soaNS (which takes lines 1-3) and the
// errors it must produce, in order, each starting with "z.zone:<line>: "
// unless it is zone-wide.
func TestValidationErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want []string
	}{
		{"out of zone", "www.example.org. A 192.0.2.1\nexample.com.evil. A 192.0.2.1\nxexample.com. A 192.0.2.1\n",
			[]string{"z.zone:4: www.example.org. A is outside the zone example.com.", "z.zone:5: ", "z.zone:6: "}},
		{"second SOA", "@ SOA ns hm 2 7200 3600 1209600 300\n",
			[]string{"z.zone:4: more than one SOA record at the zone apex"}},
		{"SOA below apex", "sub SOA ns hm 2 7200 3600 1209600 300\n",
			[]string{"z.zone:4: sub.example.com. SOA is not at the zone apex"}},
		{"CNAME and other data", "www A 192.0.2.1\nWWW CNAME x\nwww RRSIG A 8 3 300 20300101000000 20200101000000 1 example.com. AAAA\nwww NSEC x A RRSIG\n",
			[]string{"z.zone:4: www.example.com. A: a name with a CNAME can have no other data"}},
		{"CNAME case and escapes", "abc TXT x\n\\065BC CNAME x\n",
			[]string{"z.zone:4: abc.example.com. TXT: a name with a CNAME"}},
		{"two CNAMEs", "www CNAME x\nwww CNAME y\n",
			[]string{"z.zone:5: more than one CNAME record for www.example.com."}},
		{"CNAME at apex", "@ CNAME x\n",
			[]string{"z.zone:4: CNAME at the zone apex"}},
		{"data below delegation", "sub NS ns.sub\nns.sub A 192.0.2.1\nns.sub AAAA 2001:db8::1\nwww.sub TXT hi\nx.y.sub MX 1 x\n",
			[]string{"z.zone:7: www.sub.example.com. TXT is below the delegation at sub.example.com.", "z.zone:8: x.y.sub.example.com. MX is below"}},
		{"nested delegation", "sub NS ns.sub\ndeep.sub NS x\n",
			[]string{"z.zone:5: deep.sub.example.com. NS is below the delegation at sub.example.com."}},
		{"data at delegation point", "sub NS ns.example.net.\nsub DS 1 8 2 abcdef0123456789\nsub A 192.0.2.1\nsub TXT hi\n",
			[]string{"z.zone:7: sub.example.com. TXT at a delegation point"}},
		{"DS without delegation", "sub DS 1 8 2 abcdef0123456789\n",
			[]string{"z.zone:4: sub.example.com. DS without NS"}},
		{"DS at apex", "@ DS 1 8 2 abcdef0123456789\n",
			[]string{"z.zone:4: DS at the zone apex"}},
		{"DNAME", "d DNAME example.net.\nd DNAME example.org.\nx.d A 192.0.2.1\n",
			[]string{"z.zone:5: more than one DNAME record for d.example.com.", "z.zone:6: x.d.example.com. A is below the DNAME at d.example.com."}},
		{"class", "www CH TXT hi\n",
			[]string{"z.zone:4: www.example.com. TXT: class CH is not supported"}},
		{"meta type", "www TYPE200 \\# 0\n",
			[]string{"z.zone:4: www.example.com. TYPE200: not a type that can be zone data"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(soaNS+tc.body), "example.com.", "z.zone", "")
			checkErrors(t, err, tc.want)
		})
	}
}

func TestValidationZoneWide(t *testing.T) {
	_, err := Parse(strings.NewReader("$TTL 60\nwww A 192.0.2.1\n"), "example.com.", "z.zone", "")
	checkErrors(t, err, []string{"no SOA record at the zone apex example.com.", "no NS records at the zone apex example.com."})
}

func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	var l ErrorList
	if !errors.As(err, &l) {
		t.Fatalf("got %v (%T), want an ErrorList", err, err)
	}
	if len(l) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(l), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(l[i].Error(), w) {
			t.Errorf("error %d: got %q, want prefix %q", i, l[i].Error(), w)
		}
	}
}

// Zones from transfers or the API have no positions and may be built in
// code; the errors must still say which record is wrong.
func TestValidateBuilt(t *testing.T) {
	soa, _ := dns.NewRR("example.com. 60 SOA ns hm 1 2 3 4 5")
	ns, _ := dns.NewRR("example.com. 60 NS ns.example.net.")
	bad := &dns.A{Hdr: dns.RR_Header{Name: "x.example.com.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, A: net.IPv4(192, 0, 2, 1)}
	nilIP := &dns.AAAA{Hdr: dns.RR_Header{Name: "y.example.com.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET}}
	rel := &dns.A{Hdr: dns.RR_Header{Name: "z.example.com", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(192, 0, 2, 1)}
	z := &Zone{Origin: "example.com.", Records: []dns.RR{soa, ns, bad, nilIP, rel, nil}}
	checkErrors(t, z.Validate(), []string{
		"x.example.com.: header type TXT does not match record data *dns.A",
		"y.example.com. AAAA: record has no data",
		"z.example.com A: cannot be encoded",
		"empty record",
	})

	checkErrors(t, (&Zone{Origin: "Example.com."}).Validate(), []string{`origin "Example.com." is not in canonical form ("example.com.")`})
	checkErrors(t, (&Zone{Origin: "a\x00b.com."}).Validate(), []string{`origin "a\x00b.com." is not in canonical form ("a\\000b.com.")`})
	if err := (&Zone{Origin: "example.com.", Records: []dns.RR{soa, ns}}).Validate(); err != nil {
		t.Errorf("minimal zone: %v", err)
	}
}

func TestErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString(soaNS)
	for i := range MaxErrors + 50 {
		fmt.Fprintf(&b, "h%d.example.org. A 192.0.2.1\n", i)
	}
	_, err := Parse(strings.NewReader(b.String()), "example.com.", "z.zone", "")
	var l ErrorList
	if !errors.As(err, &l) || len(l) != MaxErrors+1 {
		t.Fatalf("got %d errors, want %d + summary", len(l), MaxErrors)
	}
	if last := l[MaxErrors].Error(); last != "50 more errors not shown" {
		t.Errorf("summary %q", last)
	}
	if first := l[0].Error(); !strings.HasPrefix(first, "z.zone:4: h0.example.org.") {
		t.Errorf("first error %q", first)
	}
}

func BenchmarkValidate(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(soaNS)
	for i := range 100000 {
		fmt.Fprintf(&sb, "h%d A 192.0.2.%d\n", i, i%250)
	}
	z, err := Parse(strings.NewReader(sb.String()), "example.com.", "z", "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := z.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// The store's keys and the placement pass depend on this exact form:
// labels reversed and lower-cased, each ending in 0, with 0x00 and 0x01
// escaped so that a name sorts right before its children.
func TestAppendOrderKey(t *testing.T) {
	for _, c := range []struct {
		name []byte // wire
		want string
	}{
		{[]byte("\x03Www\x07Example\x03COM\x00"), "com\x00example\x00www\x00"},
		{[]byte("\x00"), ""},
		{[]byte("\x03a\x00B\x01z\x00"), "z\x00a\x01\x01b\x00"},
		{[]byte("\x02\x01Q\x04TEST\x00"), "test\x00\x01\x02q\x00"},
		{[]byte("\x01*\x04zone\x00"), "zone\x00*\x00"},
	} {
		if got := string(AppendOrderKey([]byte("pre"), c.name)); got != "pre"+c.want {
			t.Errorf("AppendOrderKey(%q) = %q, want %q", c.name, got, "pre"+c.want)
		}
	}
	// A name sorts after its parent and before its parent's next sibling.
	a := AppendOrderKey(nil, []byte("\x01a\x04zone\x00"))
	ab := AppendOrderKey(nil, []byte("\x01b\x01a\x04zone\x00"))
	a0 := AppendOrderKey(nil, []byte("\x02a\x00\x04zone\x00"))
	if !(string(a) < string(ab) && string(ab) < string(a0)) {
		t.Errorf("order: %q %q %q", a, ab, a0)
	}
}
