package zone

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// parsed is what ParseStream hands on, in a form that can be compared.
type parsed struct {
	recs []string // text, TTL, class and wire form, position and problem
	err  string
	fast int // records the fast reader gave itself
}

func collect(t testing.TB, err error, recs []string) parsed {
	out := parsed{recs: recs}
	if err != nil {
		out.err = err.Error()
	}
	return out
}

func describe(t testing.TB, rr dns.RR, pos Position, problem string) string {
	buf := make([]byte, 65535)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	wire := ""
	if err != nil {
		wire = "pack error: " + err.Error()
	} else {
		wire = fmt.Sprintf("%x", buf[:n])
	}
	return fmt.Sprintf("%s|%T|ttl=%d|class=%d|%s|%s:%d|%s", rr.String(), rr, rr.Header().Ttl, rr.Header().Class, wire, pos.File, pos.Line, problem)
}

// parseFast is ParseStream, the fast reader first.
func parseFast(t testing.TB, data, origin, dir string) parsed {
	var recs []string
	err := ParseStream(bytes.NewReader([]byte(data)), origin, "z.zone", dir, func(rr dns.RR, pos Position, problem string) {
		recs = append(recs, describe(t, rr, pos, problem))
	})
	return collect(t, err, recs)
}

// parseMiekg is ParseStream as it was: ZoneParser reads all of it.
func parseMiekg(t testing.TB, data, origin, dir string) parsed {
	var recs []string
	p := &parser{filename: "z.zone", includeDir: dir}
	fr := newFastReader(bytes.NewReader([]byte(data)), Canonical(origin))
	fr.start = 1
	err := p.rest(fr, func(rr dns.RR, pos Position, problem string) {
		recs = append(recs, describe(t, rr, pos, problem))
	})
	return collect(t, err, recs)
}

// fastCount counts the records the fast reader reads itself before it
// first defers.
func fastCount(data, origin string) int {
	fr := newFastReader(strings.NewReader(data), Canonical(origin))
	n := 0
	for {
		_, res := fr.next()
		if res != fastRecord {
			return n
		}
		n++
	}
}

func sameAsMiekg(t testing.TB, data, origin, dir string) {
	t.Helper()
	got, want := parseFast(t, data, origin, dir), parseMiekg(t, data, origin, dir)
	if got.err != want.err {
		t.Fatalf("error %q, ZoneParser's %q\n%s", got.err, want.err, data)
	}
	if len(got.recs) != len(want.recs) {
		t.Fatalf("%d records, ZoneParser %d\n%s\ngot:\n%s\nwant:\n%s", len(got.recs), len(want.recs), data,
			strings.Join(got.recs, "\n"), strings.Join(want.recs, "\n"))
	}
	for i := range got.recs {
		if got.recs[i] != want.recs[i] {
			t.Fatalf("record %d:\n got  %s\n want %s\nzone:\n%s", i, got.recs[i], want.recs[i], data)
		}
	}
}

// TestFastSameAsMiekgRepoZones reads the zone files in the repository
// both ways.
func TestFastSameAsMiekgRepoZones(t *testing.T) {
	var files []string
	for _, g := range []string{"../../test/diff/testdata/*.zone", "../../cmd/shoestring/*.zone", "../../cmd/fleet/demo/*.zone"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	if len(files) < 5 {
		t.Fatalf("found only %d zone files: %v", len(files), files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		origin := strings.TrimSuffix(filepath.Base(f), ".zone") + "."
		if origin == "example." {
			origin = "example.com."
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			sameAsMiekg(t, string(data), origin, filepath.Dir(f))
		})
	}
	for i, s := range []string{goodZone, soaNS, soaNS + "www A 192.0.2.1\n  AAAA 2001:db8::1\n"} {
		t.Run(fmt.Sprint("const", i), func(t *testing.T) { sameAsMiekg(t, s, "example.com.", "") })
	}
}

// shapes are lines of every kind the fast reader takes and some it
// defers; %s is replaced by a random name.
var shapes = []string{
	"%s A 192.0.2.1", "%s 300 A 10.0.0.255", "%s IN A 0.0.0.0", "%s in 60 a 255.255.255.255",
	"%s 60 IN A 1.2.3.4", "\tA 192.0.2.7", "  300 AAAA 2001:db8::2", "%s AAAA ::ffff:192.0.2.1",
	"%s IN AAAA 2001:DB8:0:0:0:0:0:1", "%s NS ns1", "%s NS ns.example.net.", "%s CNAME @",
	"%s PTR host.example.", "%s MX 10 mail", "%s 3600 IN MX 0 .", "%s TXT \"hello world\"",
	"%s TXT \"a\" \"b c\" \"d;e(f)\"", "%s SOA ns hostmaster 2024010101 7200 3600 1209600 300",
	"%s IN SOA ns.x. h.x. 1 2 3 4 5 ; comment", "; just a comment", "", "   ", "\t; indented comment",
	"%s A 192.0.2.1 ; trailing", "@ A 192.0.2.9", "* A 192.0.2.10", "*.%s A 192.0.2.11",
	"$TTL 86400", "$TTL 0", "$ORIGIN sub", "$ORIGIN example.org.", "$ORIGIN .",
	// Deferred to ZoneParser.
	"%s SOA ns hm ( 1 2 3\n 4 5 )", "%s A 01.2.3.4", "%s A 1.2.3", "%s AAAA 1.2.3.4",
	"%s TXT unquoted words", "%s TXT \"esc\\\"aped\"", "%s CAA 0 issue \"ca\"", "%s TYPE65534 \\# 1 ab",
	"%s 1h A 192.0.2.1", "%s CH A 192.0.2.1", "%s IN IN A 192.0.2.1", "%s A 192.0.2.1 extra",
	"a\\.b A 192.0.2.2", "%s MX 70000 x", "%s TXT \"\"", "$TTL 1h", "$ORIGIN a\\.b", "$GENERATE 1-3 h$ A 192.0.2.$",
	"%s DS 1 8 2 abcdef", "%s A", "%s", "bad..name A 192.0.2.1", "%s 4294967296 A 192.0.2.1", "%s 4294967295 A 1.1.1.1",
	"%s NS in", "%s MX 10 IN", "%s TXT \"x\"\"y\"", "%s A 192.0.2.1\r", "%s ( A 192.0.2.3 )", "%s SOA ns hm 1 2 3 4 5x",
	" ( A 192.0.2.3 )", "%s AAAA fe80::1%eth0",
}

func randName(rng *rand.Rand) string {
	switch rng.Intn(6) {
	case 0:
		return "@"
	case 1:
		return fmt.Sprintf("h%d.example.com.", rng.Intn(5))
	case 2:
		return fmt.Sprintf("_sip._tcp.h%d", rng.Intn(5))
	case 3:
		return strings.Repeat("x", 1+rng.Intn(70))
	case 4:
		return fmt.Sprint(rng.Intn(256))
	}
	return fmt.Sprintf("H%d-a", rng.Intn(5))
}

// TestFastSameAsMiekgGenerated reads zones made of random lines of every
// shape both ways.
func TestFastSameAsMiekgGenerated(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	fast := 0
	for i := 0; i < 1500; i++ {
		var b strings.Builder
		n := 1 + rng.Intn(12)
		if rng.Intn(3) == 0 {
			b.WriteString("$TTL 3600\n")
		}
		for j := 0; j < n; j++ {
			s := shapes[rng.Intn(len(shapes))]
			if strings.Contains(s, "%s") {
				s = fmt.Sprintf(s, randName(rng))
			}
			b.WriteString(s)
			if j < n-1 || rng.Intn(4) != 0 {
				b.WriteByte('\n')
			}
		}
		origin := "example.com."
		if rng.Intn(10) == 0 {
			origin = "."
		}
		sameAsMiekg(t, b.String(), origin, "")
		fast += fastCount(b.String(), origin)
	}
	if fast < 800 {
		t.Fatalf("the fast reader read only %d records itself", fast)
	}
}

// TestFastErrorLines checks that errors after the fast reader has read
// part of the file name the right line, with and without $TTL.
func TestFastErrorLines(t *testing.T) {
	for _, s := range []string{
		soaNS + "a A 192.0.2.1\nb A 192.0.2.300\n",
		"$TTL 60\n" + soaNS + "a A 192.0.2.1\n\n\nb BOGUS 1\n",
		soaNS + "a 20 A 192.0.2.1\n b ( A\n 192.0.2.1 ) )\n",
		soaNS + "a A 192.0.2.1\n$INCLUDE x.zone\n",
	} {
		sameAsMiekg(t, s, "example.com.", "")
		_, err := Parse(strings.NewReader(s), "example.com.", "z.zone", "")
		if err == nil || !strings.Contains(err.Error(), "z.zone:") {
			t.Fatalf("error %v does not name the file and line", err)
		}
	}
}

// FuzzFastParse checks that the fast reader either defers to ZoneParser
// or reads what it reads: the same records, positions, problems and
// errors as ZoneParser alone.
func FuzzFastParse(f *testing.F) {
	for _, s := range shapes {
		f.Add([]byte(strings.ReplaceAll(s, "%s", "www") + "\n"))
	}
	f.Add([]byte(goodZone))
	f.Add([]byte(soaNS + "www A 192.0.2.1\n  AAAA 2001:db8::1\n$ORIGIN sub\nx TXT \"a b\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 || bytes.Contains(bytes.ToLower(data), []byte("$generate")) ||
			bytes.Contains(bytes.ToLower(data), []byte("$include")) {
			return
		}
		sameAsMiekg(t, string(data), "example.com.", "")
	})
}
