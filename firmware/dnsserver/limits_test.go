package dnsserver

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestMetricsCountAbuse: over a real socket, limited replies are counted
// by class and action, and queries by cookie state.
func TestMetricsCountAbuse(t *testing.T) {
	s, addr := startTestServerWith(t, Config{Listen: []string{"127.0.0.1:0"}, UDPWorkers: 1,
		RRL: &RRLConfig{ResponsesPerSecond: 2, Slip: 2}}, parseTestZone(t, "example.com.", testZone))
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := plainQuery(t, "nope.example.com.", dns.TypeA)
	for i := 0; i < 20; i++ {
		c.Write(q)
	}
	c.Write(cookieQuery(t, "example.com.", cc1))
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		m := s.QueryMetrics()
		if m.RRL["nxdomain"]["slip"]+m.RRL["nxdomain"]["drop"] == 18 && m.Cookies["client_only"] == 1 {
			if m.RRL["nxdomain"]["slip"] != 9 {
				t.Fatalf("slip 2: %v", m.RRL)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := s.QueryMetrics()
	t.Fatalf("metrics: rrl %v cookies %v", m.RRL, m.Cookies)
}

// TestTCPPerClientLimit: one client prefix cannot hold more than
// TCPMaxConnsPerClient connections.
func TestTCPPerClientLimit(t *testing.T) {
	s, addr := startTestServerWith(t, Config{Listen: []string{"127.0.0.1:0"}, UDPWorkers: 1, TCPMaxConnsPerClient: 3},
		parseTestZone(t, "example.com.", testZone))
	var conns []*dns.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := dns.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		m := new(dns.Msg)
		m.SetQuestion("example.com.", dns.TypeSOA)
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if err := c.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadMsg(); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
	}
	c, err := dns.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeSOA)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	c.WriteMsg(m)
	if _, err := c.ReadMsg(); err == nil {
		t.Fatal("a fourth connection from the same prefix was served")
	}
	if got := s.QueryMetrics().TCPRefusedPerClient; got != 1 {
		t.Errorf("refused per client: %d", got)
	}
	// Closing one frees its slot.
	conns[0].Close()
	conns = conns[1:]
	ok := false
	for i := 0; i < 50 && !ok; i++ {
		time.Sleep(20 * time.Millisecond)
		c, err := dns.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(time.Second))
		if c.WriteMsg(m) == nil {
			if _, err := c.ReadMsg(); err == nil {
				ok = true
			}
		}
		c.Close()
	}
	if !ok {
		t.Fatal("slot not freed after a connection closed")
	}
}

// TestDroppedQueries: responses (QR=1) and queries from the ports of
// echo, daytime, chargen and time get no reply.
func TestDroppedQueries(t *testing.T) {
	_, addr := startTestServer(t, parseTestZone(t, "example.com.", testZone))
	ua, _ := net.ResolveUDPAddr("udp", addr)
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeSOA)
	q, _ := m.Pack()
	m.Response = true
	resp, _ := m.Pack()
	silent := func(from *net.UDPAddr, msg []byte) bool {
		c, err := net.DialUDP("udp", from, ua)
		if err != nil {
			t.Fatalf("cannot bind %v: %v", from, err)
		}
		defer c.Close()
		c.Write(msg)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 512)
		_, err = c.Read(buf)
		return err != nil
	}
	if !silent(nil, resp) {
		t.Error("a message with QR=1 was answered")
	}
	if silent(nil, q) {
		t.Fatal("a plain query was not answered")
	}
	for _, p := range []int{7, 13, 19, 37} {
		if !silent(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}, q) {
			t.Errorf("a query from port %d was answered", p)
		}
	}
}

// TestUnknownOpcodeHeader: NOTIMP echoes only ID, opcode and RD of the
// query's header (RFC 1035 §4.1.1).
func TestUnknownOpcodeHeader(t *testing.T) {
	_, addr := startTestServer(t, parseTestZone(t, "example.com.", testZone))
	for _, op := range []int{dns.OpcodeIQuery, dns.OpcodeStatus, 3, dns.OpcodeUpdate, 15} {
		m := new(dns.Msg)
		m.SetQuestion("example.com.", dns.TypeSOA)
		m.Opcode = op
		m.RecursionDesired = true
		m.CheckingDisabled = true
		m.AuthenticatedData = true
		r, err := dns.Exchange(m, addr)
		if err != nil {
			t.Fatalf("opcode %d: %v", op, err)
		}
		if r.Rcode != dns.RcodeNotImplemented || r.Id != m.Id || r.Opcode != op || !r.RecursionDesired ||
			r.CheckingDisabled || r.AuthenticatedData || r.Authoritative || r.Truncated || r.RecursionAvailable || r.Zero {
			t.Errorf("opcode %d: reply header %+v", op, r.MsgHdr)
		}
	}
}

// slowTransfer writes n large messages, pausing between them.
type slowTransfer struct {
	n     int
	pause time.Duration
	err   chan error
}

func (s *slowTransfer) Notify([]byte, netip.AddrPort) []byte { return nil }

func (s *slowTransfer) Transfer(msg []byte, _ netip.AddrPort, w io.Writer) error {
	var q dns.Msg
	q.Unpack(msg)
	for i := 0; i < s.n; i++ {
		r := new(dns.Msg)
		r.SetReply(&q)
		r.Answer = append(r.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeTXT, Class: dns.ClassINET},
			Txt: []string{strings.Repeat("x", 255), strings.Repeat("y", 255), strings.Repeat("z", 255)}})
		for len(r.Answer) < 20 {
			r.Answer = append(r.Answer, r.Answer[0])
		}
		b, _ := r.Pack()
		if _, err := w.Write(b); err != nil {
			s.err <- err
			return err
		}
		time.Sleep(s.pause)
	}
	s.err <- nil
	return nil
}

// TestTransferWriteDeadlinePerMessage: an outbound transfer that keeps
// moving may take longer than any one deadline; each message has its own.
func TestTransferWriteDeadlinePerMessage(t *testing.T) {
	h := &slowTransfer{n: 15, pause: 100 * time.Millisecond, err: make(chan error, 1)}
	_, addr := startTestServerWith(t, Config{Listen: []string{"127.0.0.1:0"}, UDPWorkers: 1,
		TCPIdleTimeout: 100 * time.Millisecond, Transfers: h}, parseTestZone(t, "example.com.", testZone))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetAxfr("example.com.")
	b, _ := m.Pack()
	c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
	start := time.Now()
	for i := 0; i < h.n; i++ {
		readTCP(t, c)
	}
	if err := <-h.err; err != nil {
		t.Fatalf("transfer of %v failed: %v", time.Since(start), err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("took %v; the test needs longer than 10×TCPIdleTimeout", d)
	}
	// A client that stops reading is dropped after one deadline.
	h2 := &slowTransfer{n: 1000, err: make(chan error, 1)}
	_, addr2 := startTestServerWith(t, Config{Listen: []string{"127.0.0.1:0"}, UDPWorkers: 1,
		TCPIdleTimeout: 200 * time.Millisecond, Transfers: h2}, parseTestZone(t, "example.com.", testZone))
	c2, err := net.Dial("tcp", addr2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.(*net.TCPConn).SetReadBuffer(4096)
	c2.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
	select {
	case err := <-h2.err:
		if err == nil {
			t.Fatal("a transfer to a client that does not read completed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a transfer to a client that does not read was not dropped")
	}
}
