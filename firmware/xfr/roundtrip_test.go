package xfr

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/zone"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// memSource is a zone and its journal in memory, for serving in tests.
type memSource struct {
	z      *zone.Zone
	deltas []store.Delta
}

func (m *memSource) SOA(origin string) *dns.SOA {
	if m.z == nil || origin != m.z.Origin {
		return nil
	}
	return m.z.SOA()
}

// Zone and Journal hand out copies, as the store does (Source's rule).
func (m *memSource) Zone(string) (*zone.Zone, error) {
	return &zone.Zone{Origin: m.z.Origin, Records: copyRRs(m.z.Records)}, nil
}

func (m *memSource) Journal(_ string, from uint32) ([]store.Delta, error) {
	for i, d := range m.deltas {
		if d.FromSerial == from {
			var out []store.Delta
			for _, d := range m.deltas[i:] {
				d.Removed, d.Added = copyRRs(d.Removed), copyRRs(d.Added)
				out = append(out, d)
			}
			return out, nil
		}
	}
	return nil, store.ErrJournalGap
}

func copyRRs(rrs []dns.RR) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}

// prefixed adds the TCP length prefix, as the DNS server does.
type prefixed struct{ w io.Writer }

func (p prefixed) Write(b []byte) (int, error) {
	var l [2]byte
	binary.BigEndian.PutUint16(l[:], uint16(len(b)))
	if _, err := p.w.Write(l[:]); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}

// serveTCP runs srv on a loopback listener; cut, when > 0, closes each
// connection after that many response bytes.
func serveTCP(t *testing.T, srv *Server, cut int) netip.AddrPort {
	t.Helper()
	return testenv.ServeTCP(t, func(c net.Conn) {
		msg, err := readTCP(bufio.NewReader(c))
		if err != nil {
			return
		}
		from, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		var w io.Writer = c
		if cut > 0 {
			w = &cutter{w: c, left: cut}
		}
		bw := bufio.NewWriter(w)
		srv.Serve(msg, from, prefixed{bw})
		bw.Flush()
	})
}

type cutter struct {
	w    io.Writer
	left int
}

func (c *cutter) Write(b []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("cut")
	}
	if len(b) > c.left {
		b = b[:c.left]
	}
	c.left -= len(b)
	return c.w.Write(b)
}

func bigZone(t *testing.T, serial uint32, hosts int) *zone.Zone {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 h %d 60 10 600 60\n@ NS ns1\nns1 A 192.0.2.1\n", serial)
	for i := range hosts {
		fmt.Fprintf(&b, "host%d A 192.0.2.%d\nhost%d TXT \"%s\"\n", i, i%250, i, strings.Repeat("x", i%100))
	}
	z, err := zone.Parse(strings.NewReader(b.String()), "example.test.", "test", "")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestAXFRRoundTrip(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("tsig=%v", signed), func(t *testing.T) {
			z := bigZone(t, 7, 3000)
			srv := &Server{Source: &memSource{z: z}, ACL: ACL{{}}}
			r := Remote{}
			if signed {
				k := testKey(t, "hmac-sha512")
				srv.Keys = Keyring{k.Name: k}
				srv.ACL = ACL{{Key: k.Name}}
				r.Key = k
			}
			r.Addr = serveTCP(t, srv, 0)
			res, err := (&Client{}).AXFR(context.Background(), r, "example.test.")
			if err != nil {
				t.Fatal(err)
			}
			if res.Kind != KindAXFR || len(res.Records) != len(z.Records) || res.SOA.Serial != 7 {
				t.Fatalf("got %s with %d records, serial %d; want %d records", res.Kind, len(res.Records), res.SOA.Serial, len(z.Records))
			}
			if res.Messages < 5 {
				t.Fatalf("only %d messages: the zone should span several", res.Messages)
			}
		})
	}
}

func TestAXFRRefusals(t *testing.T) {
	z := bigZone(t, 7, 10)
	k := testKey(t, "hmac-sha256")
	srv := &Server{Source: &memSource{z: z}, Keys: Keyring{k.Name: k}, ACL: ACL{{Key: k.Name}}}
	addr := serveTCP(t, srv, 0)
	_, err := (&Client{}).AXFR(context.Background(), Remote{Addr: addr}, "example.test.")
	var rc *RcodeError
	if !errors.As(err, &rc) || rc.Rcode != dns.RcodeRefused {
		t.Fatalf("unsigned request: got %v, want REFUSED", err)
	}
	wrong, _ := NewKey("xfr-key", "hmac-sha256", "d3Jvbmcgc2VjcmV0")
	_, err = (&Client{}).AXFR(context.Background(), Remote{Addr: addr, Key: wrong}, "example.test.")
	if err == nil || !strings.Contains(err.Error(), "NOTAUTH") && !strings.Contains(err.Error(), "BADSIG") {
		t.Fatalf("wrong key: got %v, want NOTAUTH/BADSIG", err)
	}
	_, err = (&Client{}).AXFR(context.Background(), Remote{Addr: addr, Key: k}, "other.test.")
	if !errors.As(err, &rc) || rc.Rcode != dns.RcodeNotAuth {
		t.Fatalf("zone not served: got %v, want NOTAUTH", err)
	}
}

func TestAXFRLimitsAndCuts(t *testing.T) {
	z := bigZone(t, 7, 2000)
	srv := &Server{Source: &memSource{z: z}, ACL: ACL{{}}}
	addr := serveTCP(t, srv, 0)
	c := &Client{Limits: Limits{MaxRecords: 1000}}
	_, err := c.AXFR(context.Background(), Remote{Addr: addr}, "example.test.")
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("record limit: got %v", err)
	}
	c = &Client{Limits: Limits{MaxBytes: 20000}}
	if _, err = c.AXFR(context.Background(), Remote{Addr: addr}, "example.test."); !errors.As(err, &le) {
		t.Fatalf("byte limit: got %v", err)
	}
	cutAddr := serveTCP(t, srv, 30000)
	_, err = (&Client{}).AXFR(context.Background(), Remote{Addr: cutAddr}, "example.test.")
	if err == nil || !strings.Contains(err.Error(), "cut after") {
		t.Fatalf("cut transfer: got %v", err)
	}
}

func TestIXFRRoundTrip(t *testing.T) {
	z := bigZone(t, 9, 5)
	soa := func(serial uint32) *dns.SOA {
		s := *z.SOA()
		s.Serial = serial
		return &s
	}
	a := func(name, ip string) dns.RR {
		rr, _ := dns.NewRR(name + " 300 IN A " + ip)
		return rr
	}
	deltas := []store.Delta{
		{FromSerial: 7, ToSerial: 8, Removed: []dns.RR{soa(7), a("x.example.test.", "192.0.2.7")}, Added: []dns.RR{soa(8), a("y.example.test.", "192.0.2.8")}},
		{FromSerial: 8, ToSerial: 9, Removed: []dns.RR{soa(8)}, Added: []dns.RR{soa(9), a("z.example.test.", "192.0.2.9")}},
	}
	srv := &Server{Source: &memSource{z: z, deltas: deltas}, ACL: ACL{{}}}
	addr := serveTCP(t, srv, 0)
	c := &Client{}
	res, err := c.IXFR(context.Background(), Remote{Addr: addr}, "example.test.", soa(7))
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != KindIXFR || len(res.Deltas) != 2 || res.Deltas[1].ToSerial != 9 || len(res.Deltas[0].Removed) != 2 || len(res.Deltas[1].Added) != 2 {
		t.Fatalf("got %s %+v", res.Kind, res.Deltas)
	}
	res, err = c.IXFR(context.Background(), Remote{Addr: addr}, "example.test.", soa(9))
	if err != nil || res.Kind != KindUpToDate {
		t.Fatalf("current serial: %v %v", res, err)
	}
	res, err = c.IXFR(context.Background(), Remote{Addr: addr}, "example.test.", soa(3))
	if err != nil || res.Kind != KindAXFR || len(res.Records) != len(z.Records) {
		t.Fatalf("journal gap: want AXFR-style, got %v %v", res, err)
	}
}

func TestSerialArithmetic(t *testing.T) {
	cases := []struct {
		a, b uint32
		want int
	}{
		{2, 1, 1}, {1, 2, -1}, {1, 1, 0}, {0, 0xFFFFFFFF, 1}, {0xFFFFFFFF, 0, -1},
		{0x7FFFFFFF, 0, 1}, {0x80000000, 0, 0}, {100, 0x80000064, 0},
	}
	for _, c := range cases {
		if got := SerialCompare(c.a, c.b); got != c.want {
			t.Errorf("SerialCompare(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
