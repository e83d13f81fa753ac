package xfr

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

// scripted answers a transfer request with messages made by reply from
// the request, as a broken or hostile primary would; raw bytes are sent
// as they are (length prefix included).
func scripted(t *testing.T, reply func(req *dns.Msg) [][]byte) netip.AddrPort {
	t.Helper()
	return testenv.ServeTCP(t, func(c net.Conn) {
		msg, err := readTCP(bufio.NewReader(c))
		if err != nil {
			return
		}
		req := new(dns.Msg)
		if req.Unpack(msg) != nil {
			return
		}
		for _, b := range reply(req) {
			c.Write(b)
		}
	})
}

func framed(m *dns.Msg) []byte {
	b, _ := m.Pack()
	out := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	return append(out, b...)
}

func rr(s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return r
}

func answerWith(req *dns.Msg, rrs ...dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.Answer = rrs
	return m
}

const soa1 = "x.test. 60 IN SOA ns.x.test. h.x.test. 1 60 30 600 60"

func TestMalformedTransfers(t *testing.T) {
	soa, soa2 := rr(soa1), rr(strings.Replace(soa1, " 1 60", " 2 60", 1))
	ns := rr("x.test. 60 IN NS ns.x.test.")
	cases := []struct {
		name  string
		reply func(req *dns.Msg) [][]byte
		want  string
	}{
		{"out of zone", func(req *dns.Msg) [][]byte {
			return [][]byte{framed(answerWith(req, soa, ns, rr("www.example.com. 60 IN A 192.0.2.1"), soa))}
		}, "outside the zone"},
		{"not SOA first", func(req *dns.Msg) [][]byte {
			return [][]byte{framed(answerWith(req, ns, soa))}
		}, "does not start with the SOA"},
		{"closing SOA differs", func(req *dns.Msg) [][]byte {
			return [][]byte{framed(answerWith(req, soa, ns, soa2))}
		}, "closing SOA"},
		{"wrong ID", func(req *dns.Msg) [][]byte {
			m := answerWith(req, soa, ns, soa)
			m.Id++
			return [][]byte{framed(m)}
		}, "ID does not match"},
		{"records after the end", func(req *dns.Msg) [][]byte {
			return [][]byte{framed(answerWith(req, soa, ns, soa, ns))}
		}, "after the final SOA"},
		{"another class", func(req *dns.Msg) [][]byte {
			return [][]byte{framed(answerWith(req, soa, rr("x.test. 60 CH TXT hello"), soa))}
		}, "class CH"},
		{"meta type", func(req *dns.Msg) [][]byte {
			opt := &dns.OPT{Hdr: dns.RR_Header{Name: "x.test.", Rrtype: dns.TypeOPT, Class: dns.ClassINET}}
			return [][]byte{framed(answerWith(req, soa, opt, soa))}
		}, "not zone data"},
		{"cut in a message", func(req *dns.Msg) [][]byte {
			b := framed(answerWith(req, soa, ns, soa))
			return [][]byte{b[:len(b)-10]}
		}, "cut after 0 messages"},
		{"stops before the end", func(req *dns.Msg) [][]byte {
			return [][]byte{framed(answerWith(req, soa, ns))}
		}, "cut after 1 messages"},
		{"garbage", func(req *dns.Msg) [][]byte {
			return [][]byte{{0, 20, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
		}, "ID does not match"},
		{"refused", func(req *dns.Msg) [][]byte {
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeRefused)
			return [][]byte{framed(m)}
		}, "REFUSED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := scripted(t, c.reply)
			res, err := (&Client{}).AXFR(context.Background(), Remote{Addr: addr}, "x.test.")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v (result %+v), want an error with %q", err, res, c.want)
			}
		})
	}
}

// An unsigned answer to a signed request is refused: anyone on the path
// could have sent it.
func TestUnsignedAnswerToSignedRequest(t *testing.T) {
	soa := rr(soa1)
	addr := scripted(t, func(req *dns.Msg) [][]byte {
		return [][]byte{framed(answerWith(req, soa, rr("x.test. 60 IN NS ns.x.test."), soa))}
	})
	_, err := (&Client{}).AXFR(context.Background(), Remote{Addr: addr, Key: testKey(t, "hmac-sha256")}, "x.test.")
	if err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("got %v", err)
	}
}
