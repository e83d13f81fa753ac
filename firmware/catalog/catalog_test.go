package catalog

import (
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

func parse(t *testing.T, text string) *zone.Zone {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(text), "cat.test.", "cat", "")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

const head = `$ORIGIN cat.test.
$TTL 0
@ SOA invalid. invalid. 7 60 10 600 0
@ NS invalid.
`

func TestParse(t *testing.T) {
	c, err := Parse(parse(t, head+`version TXT "2"
a1.zones PTR one.example.
group.a1.zones TXT "eu"
group.a1.zones TXT "fast"
coo.a1.zones PTR other.cat.
b2.zones PTR TWO.example.
ext.b2.zones TXT "ignored"
c3.zones PTR three.example.
c3.zones PTR four.example.
d4.zones PTR one.example.
orphan.zones TXT "no PTR"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Serial != 7 || len(c.Members) != 2 {
		t.Fatalf("serial %d, members %v", c.Serial, c.Members)
	}
	one := c.Members["one.example."]
	if one.ID != "a1" || one.COO != "other.cat." || strings.Join(one.Groups, ",") != "eu,fast" {
		t.Errorf("one.example.: %+v", one)
	}
	if two := c.Members["two.example."]; two.ID != "b2" || two.COO != "" {
		t.Errorf("two.example. (names are canonical): %+v", two)
	}
	// c3 has two PTRs (broken, ignored); one.example. listed twice keeps
	// the first ID.
	if len(c.Problems) != 2 {
		t.Errorf("problems: %q", c.Problems)
	}
}

func TestParseVersion(t *testing.T) {
	for _, v := range []string{"", `version TXT "1"`, "version TXT \"2\"\nversion TXT \"3\""} {
		if _, err := Parse(parse(t, head+v+"\n")); err == nil {
			t.Errorf("catalog with %q accepted", v)
		}
	}
}

func TestBuildRoundTrip(t *testing.T) {
	z := Build("cat.test", 42, []string{"b.example", "a.example."})
	if err := z.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(z)
	if err != nil {
		t.Fatal(err)
	}
	if c.Serial != 42 || len(c.Members) != 2 || c.Members["a.example."].ID != MemberID("A.example.") {
		t.Fatalf("%+v", c)
	}
}
