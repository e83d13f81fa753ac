package store

import (
	"errors"
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
