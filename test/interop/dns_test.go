package interop

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/test/refserver"
)

// ask sends one UDP query and returns the response (nil on no answer).
func ask(addr, name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return nil
	}
	return r
}

// answer is a compact view of a response: rcode and sorted answer data.
func answer(addr, name string, qtype uint16) string {
	r := ask(addr, name, qtype)
	if r == nil {
		return "no answer"
	}
	var data []string
	for _, rr := range r.Answer {
		if rr.Header().Rrtype == qtype {
			data = append(data, strings.TrimPrefix(rr.String(), rr.Header().String()))
		}
	}
	sort.Strings(data)
	return dns.RcodeToString[r.Rcode] + " " + strings.Join(data, ",")
}

// soaSerial returns the served SOA serial, or 0.
func soaSerial(addr, origin string) uint32 {
	r := ask(addr, origin, dns.TypeSOA)
	if r == nil || r.Rcode != dns.RcodeSuccess {
		return 0
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	return 0
}

// waitAnswer waits until name/qtype answers want (as answer() prints it).
func waitAnswer(t *testing.T, addr, name string, qtype uint16, want string, timeout time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, timeout, fmt.Sprintf("%s %s at %s answering %q", name, dns.TypeToString[qtype], addr, want), func() (bool, string) {
		got := answer(addr, name, qtype)
		return got == want, got
	})
}

// proxy forwards DNS over UDP and TCP to a primary, and can cut TCP
// responses after some bytes: a transfer that dies mid-way, as when a
// link drops, which no real primary does on request.
type proxy struct {
	Addr   string
	to     string
	cutAt  atomic.Int64 // 0: pass everything
	cuts   atomic.Int64
	closed chan struct{}
}

func startProxy(t *testing.T, to string) *proxy {
	t.Helper()
	port := refserver.Port(t)
	p := &proxy{Addr: fmt.Sprintf("127.0.0.1:%d", port), to: to, closed: make(chan struct{})}
	ln, err := net.Listen("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(p.closed); ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.tcp(c)
		}
	}()
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := append([]byte(nil), buf[:n]...)
			go func() {
				up, err := net.Dial("udp", p.to)
				if err != nil {
					return
				}
				defer up.Close()
				up.SetDeadline(time.Now().Add(2 * time.Second))
				up.Write(q)
				r := make([]byte, 65535)
				if n, err := up.Read(r); err == nil {
					pc.WriteTo(r[:n], from)
				}
			}()
		}
	}()
	return p
}

func (p *proxy) tcp(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.to)
	if err != nil {
		return
	}
	defer up.Close()
	go io.Copy(up, c)
	limit := p.cutAt.Load()
	if limit <= 0 {
		io.Copy(c, up)
		return
	}
	io.CopyN(c, up, limit)
	p.cuts.Add(1)
}
