package store

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// allTypes is a zone with every common type, an unknown one, and the
// owner spellings the store must keep as written.
const allTypes = `$TTL 3600
@	SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
	NS ns1
	NS ns2.example.net.
	MX 10 mail
	TXT "v=spf1 -all" "second \"string\"" "\200\001"
	CAA 0 issue "ca.example.net"
	DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==
	NSEC3PARAM 1 0 0 -
	RRSIG SOA 13 2 3600 20300101000000 20200101000000 12345 example.com. AAAA
ns1	A 192.0.2.1
	AAAA 2001:db8::1
Mail	A 192.0.2.2
MAIL	AAAA 2001:db8::2
www	300 CNAME @
_sip._tcp SRV 10 20 5060 sip
sip	A 192.0.2.3
4.2.0.192.in-addr PTR www
naptr	NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" .
ssh	SSHFP 4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789
_443._tcp TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
svc	HTTPS 1 . alpn="h2,h3" port=8443 ipv4hint=192.0.2.9
svc	SVCB 0 www
loc	LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
hinfo	HINFO "PC" "Linux"
_ftp._tcp URI 10 1 "ftp://ftp.example.com/"
nsec	NSEC nsec3 A RRSIG NSEC
abcdefghij NSEC3 1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG
dn	DNAME example.net.
unk	TYPE65534 \# 3 abcdef
empty	TYPE65533 \# 0
a\.b	A 192.0.2.4
\200x	A 192.0.2.5
sub	NS ns.sub
sub	DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.sub	A 192.0.2.6
`

func parse(t testing.TB, origin, text string) *zone.Zone {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(text), origin, "test.zone", "")
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return z
}

func open(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "dir", "store.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// wireTexts returns a zone's records as sorted wire form (owner spelling
// and TTL included), to compare content exactly: the text form is not
// canonical (NSEC3 hashes come back in upper case, for one).
func wireTexts(t testing.TB, rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	buf := make([]byte, packBufSize)
	for i, rr := range rrs {
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(buf[:n])
	}
	slices.Sort(out)
	return out
}

func sameRecords(t testing.TB, got, want []dns.RR) {
	t.Helper()
	if !slices.Equal(wireTexts(t, got), wireTexts(t, want)) {
		t.Errorf("records differ:\ngot:\n%s\nwant:\n%s", texts(got), texts(want))
	}
}

func texts(rrs []dns.RR) string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func TestRoundTrip(t *testing.T) {
	s, _ := open(t, Options{})
	z := parse(t, "example.com.", allTypes)
	info, err := s.PutZoneFrom(z, "file")
	if err != nil {
		t.Fatal(err)
	}
	if info.Origin != "example.com." || info.Serial != 2024010101 || info.Records != len(z.Records) || info.Source != "file" || info.Updated.IsZero() {
		t.Errorf("info %+v", info)
	}
	got, err := s.Zone("EXAMPLE.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.Origin != "example.com." {
		t.Errorf("origin %q", got.Origin)
	}
	sameRecords(t, got.Records, z.Records)
	if err := got.Validate(); err != nil {
		t.Error(err)
	}
	// Owners keep their spelling, and the unknown type stays generic.
	var names []string
	for _, rr := range got.Records {
		names = append(names, rr.Header().Name)
		if rr.Header().Rrtype == 65534 {
			if u, ok := rr.(*dns.RFC3597); !ok || u.Rdata != "abcdef" {
				t.Errorf("unknown type came back as %T %v", rr, rr)
			}
		}
	}
	for _, n := range []string{"Mail.example.com.", "MAIL.example.com.", `a\.b.example.com.`, `\200x.example.com.`} {
		if !slices.Contains(names, n) {
			t.Errorf("owner %q lost; have %q", n, names)
		}
	}
	if i2, _ := s.Info("example.com."); i2 != info {
		t.Errorf("Info %+v, PutZone said %+v", i2, info)
	}
}

func TestDuplicatesMergedOnPut(t *testing.T) {
	s, _ := open(t, Options{})
	z := parse(t, "example.com.", "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n")
	a, _ := dns.NewRR("NS.example.com. 120 A 192.0.2.1")
	z.Records = append(z.Records, a)
	info, err := s.PutZone(z)
	if err != nil {
		t.Fatal(err)
	}
	if info.Records != 3 {
		t.Errorf("%d records stored, want 3", info.Records)
	}
}

func TestReplaceDeleteList(t *testing.T) {
	s, _ := open(t, Options{})
	for _, o := range []string{"b.example.", "a.example.", "c.example."} {
		if _, err := s.PutZoneFrom(parse(t, o, "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"), "api"); err != nil {
			t.Fatal(err)
		}
	}
	v2 := parse(t, "a.example.", "$TTL 60\n@ SOA ns hm 2 2 3 4 5\n@ NS ns\nns A 192.0.2.2\nwww A 192.0.2.3\n")
	if _, err := s.PutZone(v2); err != nil {
		t.Fatal(err)
	}
	got, err := s.Zone("a.example.")
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got.Records, v2.Records)

	if err := s.DeleteZone("B.example"); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Origin != "a.example." || list[0].Serial != 2 || list[0].Records != 4 || list[0].Source != "" ||
		list[1].Origin != "c.example." || list[1].Source != "api" {
		t.Errorf("list %+v", list)
	}
	for _, err := range []error{
		s.DeleteZone("b.example."),
		func() error { _, err := s.Zone("b.example."); return err }(),
		func() error { _, err := s.Info("b.example."); return err }(),
		func() error { _, err := s.Journal("b.example.", 1); return err }(),
		func() error { _, err := s.ApplyDelta("b.example.", []Delta{{}}); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("got %v, want ErrNotFound", err)
		}
	}

	// An invalid zone is refused with the validation errors and changes
	// nothing.
	bad := parse(t, "a.example.", "$TTL 60\n@ SOA ns hm 3 2 3 4 5\n@ NS ns\nns A 192.0.2.2\n")
	cname, _ := dns.NewRR("ns.a.example. 60 CNAME www.a.example.")
	bad.Records = append(bad.Records, cname)
	var el zone.ErrorList
	if _, err := s.PutZone(bad); !errors.As(err, &el) {
		t.Errorf("invalid zone: got %v, want a zone.ErrorList", err)
	}
	if info, _ := s.Info("a.example."); info.Serial != 2 {
		t.Errorf("serial %d after refused put", info.Serial)
	}
}

// A re-put of the same zone must not write at all, and a small change to
// a big zone must write a few pages, not the zone: the SD card wears out.
func TestWritesOnlyWhatChanged(t *testing.T) {
	s, _ := open(t, Options{})
	var b strings.Builder
	b.WriteString("$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n")
	for i := range 20000 {
		b.WriteString("h" + strconv.Itoa(i) + " A 192.0.2.7\n")
	}
	text := b.String()
	z := parse(t, "example.com.", text)
	writes := func() int64 { st := s.db.Stats(); return st.TxStats.GetWrite() }

	w0 := writes()
	info1, err := s.PutZoneFrom(z, "file")
	if err != nil {
		t.Fatal(err)
	}
	full := writes() - w0
	t.Logf("first put of %d records: %d page writes", info1.Records, full)

	w0 = writes()
	info2, err := s.PutZoneFrom(parse(t, "example.com.", text), "file")
	if err != nil {
		t.Fatal(err)
	}
	if n := writes() - w0; n != 0 || info2 != info1 {
		t.Errorf("unchanged put: %d page writes, info %+v -> %+v", n, info1, info2)
	}

	changed := strings.Replace(text, "SOA ns hm 1", "SOA ns hm 2", 1)
	changed = strings.Replace(changed, "h12345 A 192.0.2.7", "h12345 A 192.0.2.8", 1)
	w0 = writes()
	if _, err := s.PutZone(parse(t, "example.com.", changed)); err != nil {
		t.Fatal(err)
	}
	small := writes() - w0
	t.Logf("two changed RRsets: %d page writes", small)
	if small > 20 || small*10 > full {
		t.Errorf("a two-RRset change wrote %d pages (whole zone: %d)", small, full)
	}
}

func TestReopen(t *testing.T) {
	s, path := open(t, Options{})
	z := parse(t, "example.com.", allTypes)
	if _, err := s.PutZone(z); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta("config", "last-good", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Zone("example.com.")
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got.Records, z.Records)
	if v, err := s.GetMeta("config", "last-good"); err != nil || string(v) != "v1" {
		t.Errorf("meta %q %v", v, err)
	}
}

func TestLocked(t *testing.T) {
	_, path := open(t, Options{})
	_, err := Open(path, Options{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("second open: %v", err)
	}
}

func TestFormatVersion(t *testing.T) {
	s, path := open(t, Options{})
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketStore).Put(keyFormat, []byte{2}) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "store format [2]") {
		t.Errorf("open of a newer format: %v", err)
	}
}

func TestMeta(t *testing.T) {
	s, _ := open(t, Options{})
	if _, err := s.GetMeta("ota", "state"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing bucket: %v", err)
	}
	if err := s.PutMeta("ota", "state", []byte("trying")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetMeta("ota", "other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing key: %v", err)
	}
	if err := s.PutMeta("ota", "empty", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetMeta("ota", "empty"); err != nil || len(v) != 0 {
		t.Errorf("empty value: %q %v", v, err)
	}
	if v, err := s.GetMeta("ota", "state"); err != nil || string(v) != "trying" {
		t.Errorf("got %q %v", v, err)
	}
	if err := s.DeleteMeta("ota", "state"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetMeta("ota", "state"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if err := s.DeleteMeta("nope", "nope"); err != nil {
		t.Errorf("delete of nothing: %v", err)
	}
}

// TestReopenKeepsData checks the store is whole and writable after Reopen.
func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir+"/s.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutMeta("b", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetMeta("b", "k"); err != nil || string(v) != "v" {
		t.Fatalf("after reopen: %q %v", v, err)
	}
	if err := s.PutMeta("b", "k2", []byte("w")); err != nil {
		t.Fatalf("write after reopen: %v", err)
	}
}
