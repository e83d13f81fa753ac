package xfr

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="

func testKey(t *testing.T, alg string) *Key {
	t.Helper()
	k, err := NewKey("xfr-key", alg, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Our signatures verify with miekg/dns's independent implementation, and
// its signatures with ours, for every algorithm: the two read RFC 8945
// alike, so a mistake would have to be made twice.
func TestTSIGAgainstMiekg(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg, func(t *testing.T) {
			k := testKey(t, alg)
			m := new(dns.Msg)
			m.SetQuestion("example.test.", dns.TypeAXFR)
			b, _ := m.Pack()
			signed, mac := k.SignRequest(b, time.Now())
			if err := dns.TsigVerify(append([]byte(nil), signed...), testSecret, "", false); err != nil {
				t.Fatalf("miekg rejects our request signature: %v", err)
			}
			if _, _, err := verifyRequest(signed, Keyring{k.Name: k}, time.Now()); err != nil {
				t.Fatalf("we reject our own request signature: %v", err)
			}

			// A response signed by miekg chains to our request MAC.
			r := new(dns.Msg)
			r.SetReply(m)
			r.SetTsig(k.Name, k.Algorithm, Fudge, time.Now().Unix())
			rb, rmac, err := dns.TsigGenerate(r, testSecret, hexs(mac), false)
			if err != nil {
				t.Fatal(err)
			}
			v := newVerifier(k, mac)
			if err := v.check(rb); err != nil {
				t.Fatalf("first response: %v", err)
			}
			// The second message uses timers only and the first's MAC.
			r2 := new(dns.Msg)
			r2.SetReply(m)
			r2.SetTsig(k.Name, k.Algorithm, Fudge, time.Now().Unix())
			rb2, _, err := dns.TsigGenerate(r2, testSecret, rmac, true)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.check(rb2); err != nil {
				t.Fatalf("second response: %v", err)
			}
			if err := v.done(); err != nil {
				t.Fatal(err)
			}

			// Our response signer, checked by miekg.
			s := newResponseSigner(k, mac)
			out := s.sign(append([]byte(nil), b...))
			if err := dns.TsigVerify(append([]byte(nil), out...), testSecret, hexs(mac), false); err != nil {
				t.Fatalf("miekg rejects our first response: %v", err)
			}
			prev := s.prior
			out2 := s.sign(append([]byte(nil), b...))
			if err := dns.TsigVerify(append([]byte(nil), out2...), testSecret, hexs(prev), true); err != nil {
				t.Fatalf("miekg rejects our second response: %v", err)
			}
		})
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// A stream may leave messages unsigned between signed ones (NSD signs
// every 96th); the MAC of the next signed one covers them, so tampering
// with an unsigned one is caught, and a stream may not end unsigned.
func TestTSIGUnsignedIntermediates(t *testing.T) {
	k := testKey(t, "hmac-sha256")
	reqMAC := []byte("0123456789abcdef0123456789abcdef")
	msg := func(i byte) []byte {
		m := new(dns.Msg)
		m.Id = 7
		m.Response = true
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, i}}}
		b, _ := m.Pack()
		return b
	}
	// Sign message 1, leave 2 and 3 unsigned, sign 4 over 2..4.
	s := newResponseSigner(k, reqMAC)
	m1 := s.sign(msg(1))
	m2, m3 := msg(2), msg(3)
	h := k.newMAC()
	writePrior(h, s.prior)
	h.Write(m2)
	h.Write(m3)
	m4raw := msg(4)
	ts := uint64(time.Now().Unix())
	h.Write(m4raw)
	writeVariables(h, k.Name, 0, k.Algorithm, ts, Fudge, 0, nil, true)
	mac := h.Sum(nil)
	// Build m4's TSIG by hand with that MAC: reuse sign's layout by
	// signing, then patching the MAC bytes.
	m4, _ := k.sign(m4raw, s.prior, true, time.Unix(int64(ts), 0), 0, nil)
	tr, err := findTSIG(m4)
	if err != nil || tr == nil {
		t.Fatal(err)
	}
	copy(tr.mac, mac)

	v := newVerifier(k, reqMAC)
	for i, m := range [][]byte{m1, m2, m3, m4} {
		if err := v.check(m); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	if err := v.done(); err != nil {
		t.Fatal(err)
	}

	// Tamper with an unsigned message: the next signature fails.
	v = newVerifier(k, reqMAC)
	bad := append([]byte(nil), m3...)
	bad[len(bad)-1] ^= 1
	for i, m := range [][]byte{m1, m2, bad, m4} {
		err := v.check(m)
		if i < 3 && err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		if i == 3 {
			var te *TSIGError
			if !errors.As(err, &te) || te.Code != tsigBadSig {
				t.Fatalf("tampered stream: got %v, want BADSIG", err)
			}
		}
	}

	// Ending on an unsigned message is refused.
	v = newVerifier(k, reqMAC)
	v.check(m1)
	v.check(m2)
	if err := v.done(); err == nil {
		t.Fatal("a stream ending unsigned passed")
	}
}

func TestTSIGWrongKeyAndTime(t *testing.T) {
	k := testKey(t, "hmac-sha256")
	other, _ := NewKey("xfr-key", "hmac-sha256", base64.StdEncoding.EncodeToString([]byte("another secret entirely")))
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeAXFR)
	b, _ := m.Pack()
	signed, _ := other.SignRequest(b, time.Now())
	_, _, err := verifyRequest(signed, Keyring{k.Name: k}, time.Now())
	var te *TSIGError
	if !errors.As(err, &te) || te.Code != tsigBadSig {
		t.Fatalf("wrong secret: got %v, want BADSIG", err)
	}
	signed, _ = k.SignRequest(b, time.Now().Add(-time.Hour))
	_, _, err = verifyRequest(signed, Keyring{k.Name: k}, time.Now())
	if !errors.As(err, &te) || te.Code != tsigBadTime {
		t.Fatalf("old signature: got %v, want BADTIME", err)
	}
	unknown, _ := NewKey("nobody", "hmac-sha256", testSecret)
	signed, _ = unknown.SignRequest(b, time.Now())
	_, _, err = verifyRequest(signed, Keyring{k.Name: k}, time.Now())
	if !errors.As(err, &te) || te.Code != tsigBadKey {
		t.Fatalf("unknown key: got %v, want BADKEY", err)
	}
	// The NOTAUTH reply to it parses and carries BADKEY.
	reply := errorReply(m, dns.RcodeNotAuth)
	tr, _ := findTSIG(signed)
	out := tsigErrorReply(reply, nil, tr, te, time.Now())
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeNotAuth || r.IsTsig() == nil || r.IsTsig().Error != dns.RcodeBadKey {
		t.Fatalf("reply: %v", r)
	}
}

// TestTSIGRecordShape: what a TSIG record carries besides its MAC agrees
// with miekg/dns (the fuzzer found a NOTIFY whose TSIG TTL we left out of
// the MAC, so we accepted what miekg and BIND reject), and a TSIG of the
// wrong class or not last in the message is refused.
func TestTSIGRecordShape(t *testing.T) {
	k := testKey(t, dns.HmacSHA256)
	keys := Keyring{k.Name: k}
	m := new(dns.Msg)
	m.SetNotify("example.test.")
	b, _ := m.Pack()
	now := time.Now()
	signed, _ := k.SignRequest(b, now)
	tsigAt := func(msg []byte) int { // offset of the TSIG's type field
		tr, err := findTSIG(msg)
		if err != nil || tr == nil {
			t.Fatalf("no TSIG: %v", err)
		}
		off, _ := skipName(msg, tr.start)
		return off
	}
	both := func(name string, msg []byte, wantOK bool) {
		t.Helper()
		_, _, ours := verifyRequest(msg, keys, now)
		theirs := dns.TsigVerify(append([]byte(nil), msg...), testSecret, "", false)
		if (ours == nil) != wantOK || (theirs == nil) != wantOK {
			t.Errorf("%s: we say %v, miekg says %v, want ok=%v", name, ours, theirs, wantOK)
		}
	}
	both("as signed", signed, true)

	// The TTL changed after signing: the MAC covers it.
	ttl := append([]byte(nil), signed...)
	binary.BigEndian.PutUint32(ttl[tsigAt(ttl)+4:], 5)
	both("TTL changed after signing", ttl, false)

	// Signed by miekg with a TTL of 5 (it MUST be 0, but both ends hash
	// what was sent): accepted by both.
	m5 := m.Copy()
	m5.SetTsig(k.Name, k.Algorithm, Fudge, now.Unix())
	m5.Extra[0].Header().Ttl = 5
	b5, _, err := dns.TsigGenerate(m5, testSecret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint32(b5[tsigAt(b5)+4:]) != 5 {
		t.Fatal("miekg did not keep the TTL")
	}
	both("signed with TTL 5", b5, true)

	// Class other than ANY.
	cl := append([]byte(nil), signed...)
	binary.BigEndian.PutUint16(cl[tsigAt(cl)+2:], dns.ClassINET)
	if _, _, err := verifyRequest(cl, keys, now); err == nil || !strings.Contains(err.Error(), "not ANY") {
		t.Errorf("TSIG of class IN: %v", err)
	}

	// Two TSIG records: the first is not last.
	twice, _ := k.SignRequest(signed, now)
	if _, _, err := verifyRequest(twice, keys, now); err == nil || !strings.Contains(err.Error(), "not the last") {
		t.Errorf("two TSIG records: %v", err)
	}
}
