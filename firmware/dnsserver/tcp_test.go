package dnsserver

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func tcpQuery(t *testing.T, name string, id uint16) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

func readTCP(t *testing.T, c net.Conn) *dns.Msg {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTCPPipelining sends many queries in one write and expects every
// answer, in order, on the same connection (RFC 7766 §6.2.1.1).
func TestTCPPipelining(t *testing.T) {
	_, addr := startTestServer(t, parseTestZone(t, "example.com.", testZone))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var burst []byte
	names := []string{"example.com.", "www.example.com.", "nope.example.com.", "x.wild.example.com."}
	for i := 0; i < 40; i++ {
		burst = append(burst, tcpQuery(t, names[i%len(names)], uint16(i))...)
	}
	if _, err := c.Write(burst); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		r := readTCP(t, c)
		if r.Id != uint16(i) || r.Question[0].Name != names[i%len(names)] {
			t.Fatalf("answer %d: id %d for %s", i, r.Id, r.Question[0].Name)
		}
	}
}

// TestTCPIdleTimeoutAndLimit checks idle connections are closed and that
// connections over the limit are refused at once.
func TestTCPIdleTimeoutAndLimit(t *testing.T) {
	_, addr := startTestServerWith(t, Config{Listen: []string{"127.0.0.1:0"}, TCPIdleTimeout: 300 * time.Millisecond, TCPMaxConns: 2, UDPWorkers: 1},
		parseTestZone(t, "example.com.", testZone))

	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(tcpQuery(t, "example.com.", 1))
		readTCP(t, c) // the connection is now counted
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection over a limit of 2 was served")
	}
	// The idle ones are closed by the server after the timeout.
	start := time.Now()
	held[0].SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := held[0].Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: want EOF from the server, got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("idle connection closed after %v; timeout is 300ms", d)
	}
	// With slots free again, a new connection is served.
	time.Sleep(100 * time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(tcpQuery(t, "example.com.", 7))
	if r := readTCP(t, c); r.Id != 7 {
		t.Fatalf("after idle close: got id %d", r.Id)
	}
}
