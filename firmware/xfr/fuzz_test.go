package xfr

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// seedDir holds the captured and hand-built seed messages of the fuzz
// targets (test/testdata/fuzz/README.md says where each came from).
var seedDir = filepath.Join("..", "..", "test", "testdata", "fuzz")

// seeds returns the files of test/testdata/fuzz/<target>, sorted by name.
func seeds(f testing.TB, target string) [][]byte {
	f.Helper()
	ents, err := os.ReadDir(filepath.Join(seedDir, target))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.Fatalf("seed corpus: %v", err)
	}
	var out [][]byte
	for _, e := range ents {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(seedDir, target, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// fuzzPrimary is an in-process primary that answers every transfer
// request with the bytes it is given, as they are (length prefixes
// included), except that each framed message's ID is set to the
// request's, so that the fuzzer gets past the ID check, then closes.
type fuzzPrimary struct {
	addr netip.AddrPort
	mu   sync.Mutex
	data []byte
}

func newFuzzPrimary(f testing.TB) *fuzzPrimary {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	p := &fuzzPrimary{addr: netip.MustParseAddrPort(ln.Addr().String())}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *fuzzPrimary) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg, err := readTCP(bufio.NewReader(c))
	if err != nil || len(msg) < 2 {
		return
	}
	p.mu.Lock()
	data := append([]byte(nil), p.data...)
	p.mu.Unlock()
	for off := 0; off+4 <= len(data); {
		copy(data[off+2:off+4], msg[:2])
		off += 2 + int(binary.BigEndian.Uint16(data[off:]))
	}
	c.Write(data)
}

// frame length-prefixes packed messages into one TCP stream.
func frame(msgs ...*dns.Msg) []byte {
	var out []byte
	for _, m := range msgs {
		b, err := m.Pack()
		if err != nil {
			panic(err)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
	}
	return out
}

func fuzzAnswer(qtype uint16, rrs ...dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion("x.test.", qtype)
	m.Response, m.Authoritative = true, true
	m.Answer = rrs
	return m
}

// FuzzTransfer drives the real transfer client (AXFR, or IXFR from a
// serial given by the input) against an in-process primary that sends the
// fuzzed stream. Whatever is accepted must be a consistent transfer: an
// AXFR is the zone's records with its SOA first and only in-zone IN data;
// an IXFR is a chain of deltas ending at the primary's serial; "up to
// date" carries nothing. The limits hold, and the client always returns
// (the primary closes the connection after its bytes).
func FuzzTransfer(f *testing.F) {
	soa, soa2, soa3 := rr(soa1), rr(strings.Replace(soa1, " 1 60", " 2 60", 1)), rr(strings.Replace(soa1, " 1 60", " 3 60", 1))
	ns, a := rr("x.test. 60 IN NS ns.x.test."), rr("www.x.test. 60 IN A 192.0.2.1")
	a2 := rr("www.x.test. 60 IN A 192.0.2.2")
	f.Add(false, uint32(0), frame(fuzzAnswer(dns.TypeAXFR, soa, ns, a, soa)))
	f.Add(false, uint32(0), frame(fuzzAnswer(dns.TypeAXFR, soa, ns), fuzzAnswer(dns.TypeAXFR, a), fuzzAnswer(dns.TypeAXFR, soa)))
	f.Add(true, uint32(1), frame(fuzzAnswer(dns.TypeIXFR, soa3, soa, a, soa2, a2, soa2, a2, soa3, a, soa3)))
	f.Add(true, uint32(3), frame(fuzzAnswer(dns.TypeIXFR, soa3)))
	f.Add(true, uint32(1), frame(fuzzAnswer(dns.TypeIXFR, soa2, ns, a, soa2)))
	for _, b := range seeds(f, "FuzzTransfer") {
		// Captured files: a flag byte (0 AXFR, 1 IXFR), the serial we
		// asked from (4 bytes), the stream as the primary sent it.
		if len(b) >= 5 {
			f.Add(b[0] == 1, binary.BigEndian.Uint32(b[1:5]), b[5:])
		}
	}
	p := newFuzzPrimary(f)
	const maxRecords, maxBytes = 2000, 256 << 10
	c := &Client{Limits: Limits{MaxRecords: maxRecords, MaxBytes: maxBytes, Timeout: 10 * time.Second, IdleTimeout: 5 * time.Second}}
	f.Fuzz(func(t *testing.T, ixfr bool, have uint32, stream []byte) {
		if len(stream) > 1<<20 {
			return
		}
		p.mu.Lock()
		p.data = stream
		p.mu.Unlock()
		origin := "x.test."
		// The stream's own origin when it has a question: captured
		// streams are of other zones.
		if len(stream) > 2 {
			m := new(dns.Msg)
			if m.Unpack(stream[2:]) == nil && len(m.Question) == 1 && m.Question[0].Name != "." {
				origin = m.Question[0].Name
			}
		}
		r := Remote{Addr: p.addr}
		start := time.Now()
		var res *Result
		var err error
		if ixfr {
			hs := &dns.SOA{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "ns.", Mbox: "h.", Serial: have}
			res, err = c.IXFR(context.Background(), r, origin, hs)
		} else {
			res, err = c.AXFR(context.Background(), r, origin)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("a %d-byte stream took %v", len(stream), d)
		}
		if err != nil {
			if res != nil {
				t.Fatalf("error %v with a result", err)
			}
			var le *LimitError
			if errors.As(err, &le) && res != nil {
				t.Fatal("limit error with a result")
			}
			return
		}
		if res.Bytes > maxBytes || res.Bytes > int64(len(stream)) {
			t.Fatalf("%d bytes accepted from a %d-byte stream (limit %d)", res.Bytes, len(stream), maxBytes)
		}
		if res.Changes() > maxRecords+1 {
			t.Fatalf("%d records accepted, limit %d", res.Changes(), maxRecords)
		}
		if res.SOA == nil || !strings.EqualFold(res.SOA.Hdr.Name, origin) {
			t.Fatalf("result without the zone's SOA: %+v", res)
		}
		inZone := func(rr dns.RR) {
			h := rr.Header()
			if h.Class != dns.ClassINET || !dns.IsSubDomain(origin, h.Name) || h.Rrtype == dns.TypeOPT || h.Rrtype == dns.TypeTSIG {
				t.Fatalf("accepted %s, not data of %s", rr, origin)
			}
		}
		switch res.Kind {
		case KindAXFR:
			if len(res.Deltas) != 0 || len(res.Records) == 0 || res.Records[0] != dns.RR(res.SOA) {
				t.Fatalf("AXFR result does not start with its SOA: %d records, %d deltas", len(res.Records), len(res.Deltas))
			}
			for _, rr := range res.Records {
				inZone(rr)
			}
		case KindIXFR:
			if !ixfr || len(res.Records) != 0 || len(res.Deltas) == 0 {
				t.Fatalf("IXFR result with %d records, %d deltas", len(res.Records), len(res.Deltas))
			}
			for i, d := range res.Deltas {
				if i > 0 && d.FromSerial != res.Deltas[i-1].ToSerial {
					t.Fatalf("delta %d starts at %d, the one before ended at %d", i, d.FromSerial, res.Deltas[i-1].ToSerial)
				}
				if len(d.Removed) == 0 || len(d.Added) == 0 {
					t.Fatalf("delta %d without its SOAs", i)
				}
				for _, rr := range append(append([]dns.RR(nil), d.Removed...), d.Added...) {
					inZone(rr)
				}
			}
			if last := res.Deltas[len(res.Deltas)-1]; last.ToSerial != res.SOA.Serial {
				t.Fatalf("IXFR ends at %d, the primary has %d", last.ToSerial, res.SOA.Serial)
			}
		case KindUpToDate:
			if !ixfr || len(res.Records) != 0 || len(res.Deltas) != 0 || SerialNewer(res.SOA.Serial, have) {
				t.Fatalf("up to date at %d asking from %d, with %d records", res.SOA.Serial, have, res.Changes())
			}
		default:
			t.Fatalf("result of kind %q", res.Kind)
		}
	})
}

// The streams captured from Knot and BIND are accepted as what they are:
// the seeds exercise the paths that succeed, not only the errors.
func TestCapturedStreams(t *testing.T) {
	p := newFuzzPrimary(t)
	want := []Kind{KindAXFR, KindIXFR, KindUpToDate}
	n := 0
	for _, b := range seeds(t, "FuzzTransfer") {
		m := new(dns.Msg)
		if len(b) < 7 || m.Unpack(b[7:]) != nil || len(m.Question) != 1 {
			t.Fatalf("seed is not a transfer stream")
		}
		origin := m.Question[0].Name
		p.mu.Lock()
		p.data = b[5:]
		p.mu.Unlock()
		var res *Result
		var err error
		if b[0] == 1 {
			have := &dns.SOA{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "ns.", Mbox: "h.", Serial: binary.BigEndian.Uint32(b[1:5])}
			res, err = (&Client{}).IXFR(context.Background(), Remote{Addr: p.addr}, origin, have)
		} else {
			res, err = (&Client{}).AXFR(context.Background(), Remote{Addr: p.addr}, origin)
		}
		if err != nil {
			t.Fatalf("captured stream refused: %v", err)
		}
		t.Logf("%s from serial %d: %s, %d changes", dns.TypeToString[m.Question[0].Qtype], binary.BigEndian.Uint32(b[1:5]), res.Kind, res.Changes())
		for i, k := range want {
			if res.Kind == k {
				want[i] = ""
			}
		}
		n++
	}
	if n == 0 {
		t.Skip("no captured streams")
	}
	for _, k := range want {
		if k != "" {
			t.Errorf("no captured stream is a %s", k)
		}
	}
}

// fuzzKey is the key the TSIG and NOTIFY targets verify with; seeds
// captured from Knot and BIND were signed with the same name and secret.
func fuzzKey(tb testing.TB) *Key {
	k, err := NewKey("fuzz-key", "hmac-sha256", testSecret)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// FuzzTSIG checks TSIG verification with a known key. Any input: no
// panic, and what verifies also verifies with miekg/dns's independent
// implementation (full-length MACs; our own checks accept truncation).
// An input that is a DNS message gets signed (as a request, and as the
// first two messages of a response stream): that verifies, and the same
// message with one byte flipped (outside the ID, which TSIG carries
// separately, and outside the TSIG record's fields other than its MAC)
// never does.
func FuzzTSIG(f *testing.F) {
	k := fuzzKey(f)
	m := new(dns.Msg)
	m.SetQuestion("x.test.", dns.TypeAXFR)
	b, _ := m.Pack()
	f.Add(b, uint16(20), byte(1))
	signed, _ := k.SignRequest(b, time.Now())
	f.Add(signed, uint16(5), byte(0x80))
	r := fuzzAnswer(dns.TypeAXFR, rr(soa1), rr("x.test. 60 IN NS ns.x.test."))
	b, _ = r.Pack()
	f.Add(b, uint16(40), byte(0x20))
	for _, s := range seeds(f, "FuzzTSIG") {
		f.Add(s, uint16(len(s)/2), byte(1))
	}
	keys := Keyring{k.Name: k}
	f.Fuzz(func(t *testing.T, msg []byte, pos uint16, flip byte) {
		now := time.Now()
		// Whatever it is, as a request and as a response.
		if kk, tr, err := verifyRequest(msg, keys, now); err == nil {
			if kk != k || tr == nil {
				t.Fatal("verified without the key")
			}
			if len(tr.mac) == k.newMAC().Size() {
				if err := dns.TsigVerify(append([]byte(nil), msg...), testSecret, "", false); err != nil {
					t.Fatalf("we accept a request miekg/dns rejects: %v", err)
				}
			}
		}
		v := newVerifier(k, []byte("request-mac"))
		v.check(msg)
		v.done()

		if _, err := findTSIG(msg); err != nil {
			return
		}
		in := new(dns.Msg)
		if in.Unpack(msg) != nil || in.IsTsig() != nil {
			return
		}
		plain, err := in.Pack()
		if err != nil {
			return
		}
		check := func(what string, signed []byte, verify func([]byte) error) {
			if err := verify(signed); err != nil {
				t.Fatalf("%s: our own signature does not verify: %v", what, err)
			}
			tr, err := findTSIG(signed)
			if err != nil || tr == nil {
				t.Fatalf("%s: no TSIG in the signed message: %v", what, err)
			}
			macOff := len(signed) - len(tr.other) - 6 - len(tr.mac)
			i := int(pos) % len(signed)
			if flip == 0 || i < 2 || (i >= tr.start && (i < macOff || i >= macOff+len(tr.mac))) {
				return
			}
			bad := append([]byte(nil), signed...)
			bad[i] ^= flip
			if err := verify(bad); err == nil {
				t.Fatalf("%s: verifies with byte %d flipped (TSIG at %d, MAC at %d)", what, i, tr.start, macOff)
			}
		}
		req, _ := k.SignRequest(append([]byte(nil), plain...), now)
		check("request", req, func(b []byte) error { _, _, err := verifyRequest(b, keys, now); return err })

		reqMAC := []byte("0123456789abcdef0123456789abcdef")
		s := newResponseSigner(k, reqMAC)
		first := s.sign(append([]byte(nil), plain...))
		second := s.sign(append([]byte(nil), plain...))
		check("second response", second, func(b []byte) error {
			v := newVerifier(k, reqMAC)
			if err := v.check(first); err != nil {
				return err
			}
			if err := v.check(b); err != nil {
				return err
			}
			return v.done()
		})
		check("first response", first, func(b []byte) error { return newVerifier(k, reqMAC).check(b) })
	})
}

// FuzzParseNotify: a NOTIFY is parsed or refused without panic; what is
// accepted is a NOTIFY for IN SOA with a canonical origin; its reply is a
// well-formed response with the request's ID and question, AA set;
// Verify with no key passes and with a key passes only when the message is
// correctly signed (miekg/dns agrees), and after a failed Verify the
// reply is NOTAUTH.
func FuzzParseNotify(f *testing.F) {
	k := fuzzKey(f)
	m := new(dns.Msg)
	m.SetNotify("x.test.")
	m.Answer = []dns.RR{rr(soa1)}
	b, _ := m.Pack()
	f.Add(b)
	signed, _ := k.SignRequest(b, time.Now())
	f.Add(signed)
	for _, s := range seeds(f, "FuzzParseNotify") {
		f.Add(s)
	}
	from := netip.MustParseAddrPort("192.0.2.1:53")
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, err := ParseNotify(raw, from)
		if err != nil {
			if n != nil {
				t.Fatal("refused with a notification")
			}
			return
		}
		if n.Origin != dns.CanonicalName(n.Origin) || n.From != from {
			t.Fatalf("origin %q not canonical", n.Origin)
		}
		checkReply := func(rcode int) {
			b := n.Reply(rcode)
			if b == nil {
				return // could not pack: nothing is sent
			}
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Fatalf("reply does not unpack: %v", err)
			}
			if r.Id != n.msg.Id || !r.Response || r.Opcode != dns.OpcodeNotify || !r.Authoritative || r.Rcode != rcode ||
				len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, n.Origin) {
				t.Fatalf("reply %v to %v", r, n.msg)
			}
		}
		if err := n.Verify(nil); err != nil {
			t.Fatalf("no key: %v", err)
		}
		checkReply(dns.RcodeSuccess)
		err = n.Verify(k)
		if err == nil {
			if !n.Signed {
				t.Fatal("an unsigned NOTIFY verified with a key")
			}
			if len(n.tsig.mac) == k.newMAC().Size() {
				if err := dns.TsigVerify(append([]byte(nil), raw...), testSecret, "", false); err != nil {
					t.Fatalf("we accept a NOTIFY miekg/dns rejects: %v", err)
				}
			}
			checkReply(dns.RcodeSuccess)
			return
		}
		if n.terr != nil {
			checkReply(dns.RcodeNotAuth)
		}
	})
}
