package store

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

func rrs(t testing.TB, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rr)
	}
	return out
}

const deltaBase = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.2\n"

func soa(serial string) string {
	return "example.com. 60 SOA ns.example.com. hm.example.com. " + serial + " 2 3 4 5"
}

func TestApplyDelta(t *testing.T) {
	s, _ := open(t, Options{})
	if _, err := s.PutZoneFrom(parse(t, "example.com.", deltaBase), "file"); err != nil {
		t.Fatal(err)
	}
	deltas := []Delta{
		{FromSerial: 1, ToSerial: 2,
			Removed: rrs(t, soa("1"), "WWW.example.com. 999 A 192.0.2.2"), // matched case- and TTL-blind
			Added:   rrs(t, soa("2"), "www.example.com. 60 A 192.0.2.3", "new.example.com. 60 TXT hello")},
		{FromSerial: 2, ToSerial: 3,
			Removed: rrs(t, soa("2")),
			Added:   rrs(t, soa("3"), "ns.example.com. 300 A 192.0.2.1")}, // TTL change as add-only
	}
	info, err := s.ApplyDelta("example.com", deltas)
	if err != nil {
		t.Fatal(err)
	}
	if info.Serial != 3 || info.Records != 5 || info.Source != "transfer" {
		t.Errorf("info %+v", info)
	}
	want := parse(t, "example.com.", "$TTL 60\n@ SOA ns hm 3 2 3 4 5\n@ NS ns\nns 300 A 192.0.2.1\nwww A 192.0.2.3\nnew TXT hello\n")
	got, _ := s.Zone("example.com.")
	sameRecords(t, got.Records, want.Records)
	if ds, err := s.Journal("example.com.", 1); err != nil || len(ds) != 2 || ds[1].ToSerial != 3 || len(ds[0].Added) != 3 {
		t.Errorf("journal %+v %v", ds, err)
	}

	// Each of these is refused and changes nothing.
	for _, tc := range []struct {
		name   string
		deltas []Delta
		check  func(error) bool
	}{
		{"serial mismatch", []Delta{{FromSerial: 1, ToSerial: 4, Removed: rrs(t, soa("1")), Added: rrs(t, soa("4"))}},
			func(err error) bool { return errors.Is(err, ErrSerialMismatch) }},
		{"second delta of a chain mismatches", []Delta{
			{FromSerial: 3, ToSerial: 4, Removed: rrs(t, soa("3")), Added: rrs(t, soa("4"), "x.example.com. 60 A 192.0.2.9")},
			{FromSerial: 5, ToSerial: 6, Removed: rrs(t, soa("5")), Added: rrs(t, soa("6"))}},
			func(err error) bool { return errors.Is(err, ErrSerialMismatch) }},
		{"invalid result", []Delta{{FromSerial: 3, ToSerial: 4, Removed: rrs(t, soa("3")), Added: rrs(t, soa("4"), "www.example.com. 60 CNAME ns.example.com.")}},
			func(err error) bool {
				var l zone.ErrorList
				return errors.As(err, &l) && strings.Contains(err.Error(), "CNAME")
			}},
		{"removes what is not there", []Delta{{FromSerial: 3, ToSerial: 4, Removed: rrs(t, soa("3"), "www.example.com. 60 A 192.0.2.99"), Added: rrs(t, soa("4"))}},
			func(err error) bool { return strings.Contains(err.Error(), "does not have") }},
		{"wrong ToSerial", []Delta{{FromSerial: 3, ToSerial: 5, Removed: rrs(t, soa("3")), Added: rrs(t, soa("4"))}},
			func(err error) bool { return strings.Contains(err.Error(), "does not add the SOA with serial 5") }},
		{"old SOA kept", []Delta{{FromSerial: 3, ToSerial: 4, Added: rrs(t, soa("4"))}},
			func(err error) bool { return strings.Contains(err.Error(), "more than one SOA") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ApplyDelta("example.com.", tc.deltas)
			if err == nil || !tc.check(err) {
				t.Errorf("got %v", err)
			}
			got, _ := s.Zone("example.com.")
			sameRecords(t, got.Records, want.Records)
			if i, _ := s.Info("example.com."); i != info {
				t.Errorf("info changed: %+v", i)
			}
		})
	}
}

// An IXFR into a big zone reads only the RRsets it touches: what it
// allocates does not grow with the zone. The zone (40,004 records) would
// take well over 4 MiB as records (the old ApplyDelta decoded it whole);
// streaming it through validation allocates next to nothing per record.
func TestApplyDeltaBigZoneStreams(t *testing.T) {
	s, _ := open(t, Options{})
	var b strings.Builder
	b.WriteString(deltaBase)
	for i := range 20_000 {
		fmt.Fprintf(&b, "h%d A 10.0.%d.%d\nh%d AAAA 2001:db8::%x\n", i, i>>8, i&255, i, i)
	}
	if _, err := s.PutZoneFrom(parse(t, "example.com.", b.String()), "file"); err != nil {
		t.Fatal(err)
	}
	deltas := []Delta{{FromSerial: 1, ToSerial: 2,
		Removed: rrs(t, soa("1"), "h7.example.com. 60 A 10.0.0.7"),
		Added:   rrs(t, soa("2"), "h7.example.com. 60 A 10.9.9.9", "new.example.com. 60 TXT hello")}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	info, err := s.ApplyDelta("example.com.", deltas)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if info.Serial != 2 || info.Records != 40_005 {
		t.Errorf("info %+v, want serial 2 and 40005 records", info)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("ApplyDelta allocated %d KiB for a 2-record change to a 40,004-record zone; want at most 1 MiB", got>>10)
	}
	z, err := s.Zone("example.com.")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, rr := range z.Records {
		switch rr.String() {
		case "h7.example.com.\t60\tIN\tA\t10.9.9.9", "new.example.com.\t60\tIN\tTXT\t\"hello\"":
			found++
		case "h7.example.com.\t60\tIN\tA\t10.0.0.7":
			t.Errorf("removed record still there")
		}
	}
	if found != 2 {
		t.Errorf("found %d of the 2 added records", found)
	}
	// A delta that breaks the zone as a whole is found by the streamed
	// check and changes nothing.
	_, err = s.ApplyDelta("example.com.", []Delta{{FromSerial: 2, ToSerial: 3,
		Removed: rrs(t, soa("2")), Added: rrs(t, soa("3"), "h19999.example.com. 60 CNAME ns.example.com.")}})
	var l zone.ErrorList
	if !errors.As(err, &l) || !strings.Contains(err.Error(), "CNAME") {
		t.Errorf("CNAME next to data: got %v", err)
	}
	if i, _ := s.Info("example.com."); i != info {
		t.Errorf("info changed by a refused delta: %+v", i)
	}
}
