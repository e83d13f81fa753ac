package refserver

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestCaptureFuzzSeeds records what Knot and BIND send (AXFR and IXFR
// streams, NOTIFY, TSIG-signed messages) into test/testdata/fuzz, the seed
// corpora of the fuzz targets. It runs only when asked
// (SHOESTRING_CAPTURE_SEEDS=1 go test -run CaptureFuzzSeeds ./test/refserver);
// the files it writes are committed.
func TestCaptureFuzzSeeds(t *testing.T) {
	if os.Getenv("SHOESTRING_CAPTURE_SEEDS") == "" {
		t.Skip("set SHOESTRING_CAPTURE_SEEDS=1 to capture the fuzz seed corpora")
	}
	out := filepath.Join("..", "testdata", "fuzz")
	key := &Key{Name: "fuzz-key", Algorithm: "hmac-sha256", Secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="}
	zone := func(serial int) string {
		return fmt.Sprintf(`$ORIGIN example.test.
$TTL 300
@ SOA ns1 hostmaster %d 3600 600 86400 300
@ NS ns1
@ NS ns2.example.net.
@ MX 10 mail
@ TXT "v=spf1 -all"
ns1 A 192.0.2.1
ns1 AAAA 2001:db8::1
www A 192.0.2.2
www AAAA 2001:db8::2
mail A 192.0.2.3
*.wild TXT "wildcard"
sub NS ns.sub
ns.sub A 192.0.2.4
alias CNAME www
_sip._udp SRV 10 60 5060 www
v%d A 192.0.2.%d
`, serial, serial, 10+serial)
	}
	write := func(target, name string, b []byte) {
		dir := filepath.Join(out, target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s/%s: %d bytes", target, name, len(b))
	}
	// transferSeed is the FuzzTransfer file format: a flag byte (1 for
	// IXFR), the serial asked from, then the stream as received.
	transferSeed := func(ixfr bool, have uint32, stream []byte) []byte {
		b := []byte{0}
		if ixfr {
			b[0] = 1
		}
		b = binary.BigEndian.AppendUint32(b, have)
		return append(b, stream...)
	}

	for _, server := range []string{"knot", "bind"} {
		t.Run(server, func(t *testing.T) {
			notify := listenNotify(t)
			var s *Server
			var bump func()
			switch server {
			case "knot":
				k := StartKnot(t, KnotConfig{Zones: []Zone{{Origin: "example.test.", Text: zone(1)}}, Key: key, Journal: true, Notify: notify.LocalAddr().String()})
				s = k.Server
				bump = func() {
					os.WriteFile(k.ZoneFile("example.test."), []byte(zone(2)), 0o644)
					k.Ctl(t, []string{"zone-reload", "example.test."})
				}
			case "bind":
				b := StartBIND(t, BINDConfig{Zones: []Zone{{Origin: "example.test.", Text: zone(1)}}, Key: key, Notify: notify.LocalAddr().String()})
				s = b
				bump = func() {
					os.WriteFile(filepath.Join(b.Dir, "example.test.zone"), []byte(zone(2)), 0o644)
					b.Reload(t)
				}
			}
			req, stream := transfer(t, s.Addr, key, dns.TypeAXFR, 0)
			write("FuzzTransfer", server+"-axfr-tsig.bin", transferSeed(false, 0, stream))
			write("FuzzTSIG", server+"-axfr-request.bin", req)
			write("FuzzTSIG", server+"-axfr-response.bin", stream[2:2+binary.BigEndian.Uint16(stream)])

			// NOTIFY over UDP (BIND) or TCP (Knot) on the same port.
			tcpNotify := make(chan []byte, 1)
			if ln, err := net.Listen("tcp", notify.LocalAddr().String()); err == nil {
				defer ln.Close()
				go func() {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					defer c.Close()
					br := bufio.NewReader(c)
					var lb [2]byte
					if _, err := io.ReadFull(br, lb[:]); err != nil {
						return
					}
					msg := make([]byte, binary.BigEndian.Uint16(lb[:]))
					if _, err := io.ReadFull(br, msg); err != nil {
						return
					}
					tcpNotify <- msg
					m := new(dns.Msg)
					if m.Unpack(msg) == nil {
						r := new(dns.Msg)
						r.SetReply(m)
						rb, _ := r.Pack()
						c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(rb))), rb...))
					}
				}()
			}
			bump()
			deadline := time.Now().Add(15 * time.Second)
			for {
				select {
				case msg := <-tcpNotify:
					write("FuzzParseNotify", server+"-notify-tsig-tcp.bin", msg)
				default:
				}
				if _, err := os.Stat(filepath.Join(out, "FuzzParseNotify", server+"-notify-tsig-tcp.bin")); err == nil {
					break
				}
				notify.SetReadDeadline(time.Now().Add(time.Second))
				buf := make([]byte, 65535)
				n, from, err := notify.ReadFromUDP(buf)
				if err == nil {
					m := new(dns.Msg)
					if m.Unpack(buf[:n]) == nil && m.Opcode == dns.OpcodeNotify && !m.Response {
						write("FuzzParseNotify", server+"-notify-tsig.bin", buf[:n])
						r := new(dns.Msg)
						r.SetReply(m)
						rb, _ := r.Pack()
						notify.WriteToUDP(rb, from)
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s sent no NOTIFY", server)
				}
			}
			time.Sleep(500 * time.Millisecond)
			_, stream = transfer(t, s.Addr, key, dns.TypeIXFR, 1)
			write("FuzzTransfer", server+"-ixfr-tsig.bin", transferSeed(true, 1, stream))
			_, stream = transfer(t, s.Addr, key, dns.TypeIXFR, 2)
			write("FuzzTransfer", server+"-ixfr-uptodate-tsig.bin", transferSeed(true, 2, stream))
		})
	}
}

func listenNotify(t *testing.T) *net.UDPConn {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// transfer sends a signed AXFR or IXFR (from serial have) and returns
// the request and the response stream as received (length prefixes
// included), up to the message that ends it.
func transfer(t *testing.T, addr string, key *Key, qtype uint16, have uint32) ([]byte, []byte) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("example.test.", qtype)
	if qtype == dns.TypeIXFR {
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "ns1.example.test.", Mbox: "hostmaster.example.test.", Serial: have}}
	}
	m.SetTsig(key.Name+".", dns.HmacSHA256, 300, time.Now().Unix())
	req, _, err := dns.TsigGenerate(m, key.Secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(req))), req...))
	br := bufio.NewReader(c)
	var stream []byte
	soas := 0
	for {
		var lb [2]byte
		if _, err := io.ReadFull(br, lb[:]); err != nil {
			t.Fatalf("%s: %v after %d bytes", dns.TypeToString[qtype], err, len(stream))
		}
		msg := make([]byte, binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(br, msg); err != nil {
			t.Fatal(err)
		}
		stream = append(append(stream, lb[:]...), msg...)
		r := new(dns.Msg)
		if err := r.Unpack(msg); err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s: %s", dns.TypeToString[qtype], dns.RcodeToString[r.Rcode])
		}
		for _, rr := range r.Answer {
			if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, "example.test.") {
				soas++
				// Up to date: one SOA; AXFR: two; IXFR: the last
				// SOA repeats the first and is the 2nd of its serial
				// after the deltas (checked loosely: a message that
				// ends in the current SOA after at least 2).
			}
		}
		last := r.Answer[len(r.Answer)-1]
		if qtype == dns.TypeIXFR && soas == 1 && len(r.Answer) == 1 {
			return req, stream
		}
		if soa, ok := last.(*dns.SOA); ok && soas >= 2 && (qtype == dns.TypeAXFR || soas >= 4 || (soas == 2 && len(r.Answer) > 2)) && soa.Serial >= have {
			return req, stream
		}
	}
}

// TestCaptureBIRDSeeds records what BIRD sends a neighbour: its OPEN, the
// UPDATEs of an IPv4 session (communities, large communities) and of an
// IPv6 session (MP_REACH_NLRI), and the withdrawals when the static
// routes go, into test/testdata/fuzz/FuzzUpdate (whole messages, as read
// from the wire). Run like TestCaptureFuzzSeeds.
func TestCaptureBIRDSeeds(t *testing.T) {
	if os.Getenv("SHOESTRING_CAPTURE_SEEDS") == "" {
		t.Skip("set SHOESTRING_CAPTURE_SEEDS=1 to capture the fuzz seed corpora")
	}
	ports, err := Ports(4)
	if err != nil {
		t.Fatal(err)
	}
	type session struct {
		name string
		ln   net.Listener
		msgs chan []byte
	}
	var sessions []*session
	for i, ip := range []string{"127.0.0.2"} {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(ports[i])))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		s := &session{name: []string{"v4v6"}[i], ln: ln, msgs: make(chan []byte, 100)}
		sessions = append(sessions, s)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			for {
				hdr := make([]byte, 19)
				if _, err := io.ReadFull(c, hdr); err != nil {
					close(s.msgs)
					return
				}
				body := make([]byte, int(binary.BigEndian.Uint16(hdr[16:]))-19)
				if _, err := io.ReadFull(c, body); err != nil {
					close(s.msgs)
					return
				}
				s.msgs <- append(hdr, body...)
				if hdr[18] == 1 { // OPEN: ours, then a KEEPALIVE
					caps := []byte{65, 4, 0, 0, 0xfd, 0xe9, 1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1}
					open := []byte{1, 4, 0xfd, 0xe9, 0, 90, 127, 0, 0, 1, byte(2 + len(caps)), 2, byte(len(caps))}
					for _, m := range [][]byte{append(open, caps...), {4}} {
						h := make([]byte, 18, 19+len(m))
						for i := range 16 {
							h[i] = 0xff
						}
						binary.BigEndian.PutUint16(h[16:], uint16(18+len(m)))
						c.Write(append(h, m...))
					}
				}
				if hdr[18] == 4 { // answer keepalives
					c.Write(hdr)
				}
			}
		}()
	}
	conf := fmt.Sprintf(`log stderr all;
router id 127.0.0.2;
protocol device { scan time 1; }
protocol static st4 { ipv4;
  route 203.0.113.0/24 blackhole { bgp_community.add((65002,100)); bgp_community.add((65535,65281)); bgp_large_community.add((65002,1,2)); bgp_med = 10; };
  route 198.51.100.0/25 blackhole;
  route 192.0.2.53/32 blackhole { bgp_large_community.add((4200000000,7,8)); };
}
protocol static st6 { ipv6;
  route 2001:db8:ffff::/48 blackhole { bgp_community.add((65002,6)); bgp_large_community.add((65002,6,6)); };
  route 2001:db8:53::53/128 blackhole;
}
protocol bgp up {
  local 127.0.0.1 port %d as 65002;
  neighbor 127.0.0.2 port %d as 65001;
  multihop;
  hold time 90;
  ipv4 { import none; export all; next hop self; };
  ipv6 { import none; export all; next hop address 2001:db8::2; };
}
`, ports[2], ports[0])
	b := StartBIRD(t, BIRDConfig{Config: conf})
	collect := func(s *session, d time.Duration) []byte {
		var out []byte
		timeout := time.After(d)
		for {
			select {
			case m, ok := <-s.msgs:
				if !ok {
					return out
				}
				if m[18] != 4 {
					out = append(out, m...)
				}
			case <-timeout:
				return out
			}
		}
	}
	dir := filepath.Join("..", "testdata", "fuzz", "FuzzUpdate")
	os.MkdirAll(dir, 0o755)
	var first [][]byte
	for _, s := range sessions {
		first = append(first, collect(s, 8*time.Second))
	}
	b.Cmd(t, "disable", "st4")
	b.Cmd(t, "disable", "st6")
	for i, s := range sessions {
		all := append(first[i], collect(s, 4*time.Second)...)
		if len(all) == 0 {
			t.Fatalf("BIRD sent nothing on the %s session:\n%s", s.name, b.Tail(30))
		}
		name := filepath.Join(dir, "bird-"+s.name+"-session.bin")
		if err := os.WriteFile(name, all, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", name, len(all))
	}
}

// TestCaptureCatalogSeed transfers the catalog zone Knot generates for
// two member zones and records its records (wire form, uncompressed, one
// after another) into test/testdata/fuzz/FuzzCatalog. Run like
// TestCaptureFuzzSeeds.
func TestCaptureCatalogSeed(t *testing.T) {
	if os.Getenv("SHOESTRING_CAPTURE_SEEDS") == "" {
		t.Skip("set SHOESTRING_CAPTURE_SEEDS=1 to capture the fuzz seed corpora")
	}
	member := func(origin string) Zone {
		return Zone{Origin: origin, Member: true, Text: "$ORIGIN " + origin + "\n$TTL 300\n@ SOA ns1 h 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n"}
	}
	k := StartKnot(t, KnotConfig{Zones: []Zone{member("one.test."), member("two.test.")}, Catalog: "catalog.test."})
	tr := new(dns.Transfer)
	m := new(dns.Msg)
	m.SetAxfr("catalog.test.")
	var out []byte
	for i := 0; ; i++ {
		ch, err := tr.In(m, k.Addr)
		if err == nil {
			for env := range ch {
				if env.Error != nil {
					err = env.Error
					break
				}
				for _, rr := range env.RR {
					buf := make([]byte, dns.Len(rr)+64)
					n, perr := dns.PackRR(rr, buf, 0, nil, false)
					if perr == nil {
						out = append(out, buf[:n]...)
					}
				}
			}
		}
		if err == nil && len(out) > 0 {
			break
		}
		if i > 20 {
			t.Fatalf("catalog AXFR: %v", err)
		}
		out = nil
		time.Sleep(500 * time.Millisecond)
	}
	dir := filepath.Join("..", "testdata", "fuzz", "FuzzCatalog")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "knot-catalog.bin"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("catalog: %d bytes", len(out))
}
