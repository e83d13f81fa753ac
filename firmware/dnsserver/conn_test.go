package dnsserver

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestServeAdoptedSockets: sockets the server did not open (the tailnet's,
// on a node) answer like its own, are counted, and close with the server.
func TestServeAdoptedSockets(t *testing.T) {
	s, _ := startTestServer(t, parseTestZone(t, "example.com.", testZone))
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ServePacketConn(pc); err != nil {
		t.Fatal(err)
	}
	if err := s.ServeListener(ln); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct{ net, addr string }{{"udp", pc.LocalAddr().String()}, {"tcp", ln.Addr().String()}} {
		m := new(dns.Msg)
		m.SetQuestion("x.wild.example.com.", dns.TypeA)
		r, _, err := (&dns.Client{Net: x.net, Timeout: 2 * time.Second}).Exchange(m, x.addr)
		if err != nil || len(r.Answer) != 1 {
			t.Fatalf("%s: %v %v", x.net, r, err)
		}
	}
	q := s.QueryMetrics()
	if q.Zones["example.com."]["udp"]["NOERROR"] != 1 || q.Zones["example.com."]["tcp"]["NOERROR"] != 1 {
		t.Fatalf("not counted: %v", q.Zones)
	}
	s.Close()
	if _, err := pc.WriteTo([]byte{0}, pc.LocalAddr()); err == nil {
		t.Fatal("packet socket still open after Close")
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("listener still open after Close")
	}
	// A closed server refuses new sockets, closing them.
	pc2, _ := net.ListenPacket("udp", "127.0.0.1:0")
	if err := s.ServePacketConn(pc2); err == nil {
		t.Fatal("a closed server adopted a socket")
	}
}
