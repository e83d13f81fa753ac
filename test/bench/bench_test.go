package bench

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The benchmark's numbers are only comparable between runs when its input
// is the same, so the generators must be deterministic and exact.

func TestZone(t *testing.T) {
	c := ZoneConfig{Origin: Origin, Hosts: 1000, Serial: 7}
	var a, b bytes.Buffer
	st, err := WriteZone(&a, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteZone(&b, c); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same config, different zone files")
	}
	if st.Names != 1000+4 || st.Records != 2*1000+7 {
		t.Errorf("stats %+v, want 1004 names, 2007 records", st)
	}

	// Parse it as a server would, and count what is there.
	zp := dns.NewZoneParser(bytes.NewReader(a.Bytes()), "", "bench.zone")
	types := map[uint16]int{}
	owners := map[string]bool{}
	records := 0
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		records++
		types[rr.Header().Rrtype]++
		owners[rr.Header().Name] = true
		if a, ok := rr.(*dns.A); ok && strings.HasPrefix(a.Hdr.Name, "host") {
			var i int
			fmt.Sscanf(a.Hdr.Name, "host%d.", &i)
			if got := a.A.String(); got != HostA(i).String() {
				t.Errorf("%s A %s, want %s", a.Hdr.Name, got, HostA(i))
			}
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	if records != st.Records || len(owners) != st.Names {
		t.Errorf("parsed %d records, %d owners; WriteZone said %+v", records, len(owners), st)
	}
	want := map[uint16]int{dns.TypeSOA: 1, dns.TypeNS: 2, dns.TypeA: 1000 + 3, dns.TypeAAAA: 1000 + 1}
	for typ, n := range want {
		if types[typ] != n {
			t.Errorf("%d %s records, want %d", types[typ], dns.TypeToString[typ], n)
		}
	}
	if !owners["*.wild."+Origin] {
		t.Error("no wildcard")
	}
}

func TestZoneDefaultSize(t *testing.T) {
	var n countWriter
	st, err := WriteZone(&n, DefaultZone())
	if err != nil {
		t.Fatal(err)
	}
	if st.Names != 100_004 || st.Records != 200_007 || n.lines != st.Records {
		t.Errorf("default zone: %+v, %d lines", st, n.lines)
	}
}

type countWriter struct{ lines int }

func (w *countWriter) Write(p []byte) (int, error) {
	w.lines += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

func TestMixCounts(t *testing.T) {
	for _, tc := range []struct {
		mix   Mix
		total int
		want  [numKinds]int
	}{
		{DefaultMix, 200_000, [numKinds]int{80_000, 40_000, 40_000, 40_000}},
		{DefaultMix, 7, [numKinds]int{3, 2, 1, 1}},
		{Mix{1, 1, 1, 0}, 10, [numKinds]int{4, 3, 3, 0}},
		{Mix{}, 10, [numKinds]int{}},
	} {
		if got := tc.mix.Counts(tc.total); got != tc.want {
			t.Errorf("%v.Counts(%d) = %v, want %v", tc.mix, tc.total, got, tc.want)
		}
	}
}

func TestQueries(t *testing.T) {
	c := QueryConfig{Zone: ZoneConfig{Origin: Origin, Hosts: 1000, Serial: 1}, Count: 10_000, Seed: 42, Mix: DefaultMix}
	var a, b, other bytes.Buffer
	counts, err := WriteQueries(&a, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteQueries(&b, c); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed, different query files")
	}
	c2 := c
	c2.Seed = 43
	if _, err := WriteQueries(&other, c2); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Bytes(), other.Bytes()) {
		t.Fatal("different seeds, same query file")
	}

	var got [numKinds]int
	hosts := map[string]bool{}
	sc := bufio.NewScanner(&a)
	for sc.Scan() {
		name, typ, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasSuffix(name, "."+Origin) {
			t.Fatalf("bad line %q", sc.Text())
		}
		var i int
		switch {
		case strings.HasPrefix(name, "host"):
			if _, err := fmt.Sscanf(name, "host%d.", &i); err != nil || i < 0 || i >= c.Zone.Hosts {
				t.Fatalf("line %q: host outside the zone", sc.Text())
			}
			hosts[name] = true
			switch typ {
			case "A":
				got[KindA]++
			case "AAAA":
				got[KindAAAA]++
			default:
				t.Fatalf("bad type in %q", sc.Text())
			}
		case strings.HasPrefix(name, "nx") && typ == "A":
			got[KindNX]++
		case strings.HasSuffix(name, "."+WildParent(Origin)) && typ == "A":
			got[KindWild]++
		default:
			t.Fatalf("line %q fits no kind", sc.Text())
		}
	}
	if got != counts || counts != c.Mix.Counts(c.Count) {
		t.Errorf("file has %v, WriteQueries said %v, mix says %v", got, counts, c.Mix.Counts(c.Count))
	}
	// 6,000 draws from 1,000 hosts miss about e^-6 of them; far fewer
	// distinct names would mean the generator is not spreading queries.
	if len(hosts) < 950 {
		t.Errorf("only %d distinct hosts queried", len(hosts))
	}
}

// TestDefaultQueriesPinned pins the default query file: a change to the
// generator silently changes every benchmark result, so it has to be a
// deliberate one (update the hash and say so in the change).
func TestDefaultQueriesPinned(t *testing.T) {
	h := sha256.New()
	counts, err := WriteQueries(h, DefaultQueries())
	if err != nil {
		t.Fatal(err)
	}
	if counts != [numKinds]int{80_000, 40_000, 40_000, 40_000} {
		t.Errorf("default counts %v", counts)
	}
	const want = "79f038da96bc55f97949819d08524ca26a20b8a1f7afb08e732764ffd0c8808d"
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != want {
		t.Errorf("default query file sha256 %s, pinned %s", got, want)
	}
}

func TestParseDnsperf(t *testing.T) {
	out := `DNS Performance Testing Tool
Version 2.10.0

[Status] Testing complete (time limit)

Statistics:

  Queries sent:         710342
  Queries completed:    710300 (99.99%)
  Queries lost:         42 (0.01%)

  Response codes:       NOERROR 568173 (79.99%), NXDOMAIN 142117 (20.01%), SERVFAIL 10 (0.00%)
  Average packet size:  request 39, response 64
  Run time (s):         3.000249
  Queries per second:   236761.015502

  Average Latency (s):  0.000304 (min 0.000008, max 0.002125)
  Latency StdDev (s):   0.000101
`
	r, err := ParseDnsperf(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 710342 || r.Completed != 710300 || r.Lost != 42 || r.QPS != 236761.015502 ||
		r.RunTime != 3.000249 || r.ResponseSize != 64 || r.AvgLatency != 0.000304 {
		t.Errorf("parsed %+v", r)
	}
	if r.Rcodes["NOERROR"] != 568173 || r.Rcodes["NXDOMAIN"] != 142117 || r.Failed() != 10 {
		t.Errorf("rcodes %v, failed %d", r.Rcodes, r.Failed())
	}
	if _, err := ParseDnsperf("dnsperf: could not open file"); err == nil {
		t.Error("no statistics parsed without error")
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as a thread may set.
	line := "4242 (nsd: (serve) 1) S 4240 4240 4240 0 -1 4194368 1 0 0 0 150 27 3 4 20 0 1 0 100 1000 100"
	s, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if s.PPid != 4240 || s.Ticks != 150+27+3+4 {
		t.Errorf("got %+v, want ppid 4240, 184 ticks", s)
	}
}

func TestParseProcStat(t *testing.T) {
	b := []byte(`cpu  20 0 9 73 3 0 2 9 0 0
cpu0 10 1 3 37 1 0 1 4 0 0
cpu1 9 2 5 36 2 0 1 5 0 0
intr 1 2 3
`)
	s, err := parseProcStat(b, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if s.Busy != 10+1+3+9+2+5 || s.Steal != 9 {
		t.Errorf("got %+v", s)
	}
	if _, err := parseProcStat(b, []int{0, 2}); err == nil {
		t.Error("missing core not reported")
	}
}

func TestClockTick(t *testing.T) {
	if ClockTick <= 0 || ClockTick > time.Second {
		t.Errorf("ClockTick %v", ClockTick)
	}
}

func TestPairedRatios(t *testing.T) {
	s := time.Second
	got := pairedRatios([]time.Duration{2 * s, 3 * s, 5 * s}, []time.Duration{s, 2 * s, 2 * s})
	if want := "2.00x 1.50x 2.50x (median 2.00x)"; got != want {
		t.Errorf("pairedRatios = %q, want %q", got, want)
	}
	for _, c := range [][2][]time.Duration{
		{{s}, {s}},       // one round: nothing to pair
		{{s, s}, {s}},    // a server that failed a round
		{{s, s}, {s, 0}}, // no time measured
		{nil, nil},
	} {
		if got := pairedRatios(c[0], c[1]); got != "" {
			t.Errorf("pairedRatios(%v, %v) = %q, want none", c[0], c[1], got)
		}
	}
}
