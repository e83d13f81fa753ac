package dnstap

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	dt "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"
)

func exchange(t *testing.T, name string) (q, r []byte) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	q, _ = m.Pack()
	resp := new(dns.Msg)
	resp.SetRcode(m, dns.RcodeNameError)
	r, _ = resp.Pack()
	return q, r
}

var client = netip.MustParseAddrPort("192.0.2.7:5353")

// TestSendsToCollector: a real Frame Streams collector (the dnstap
// project's reader) gets each exchange as AUTH_QUERY and AUTH_RESPONSE.
func TestSendsToCollector(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *dt.Dnstap, 16)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		in, err := dt.NewFrameStreamInputTimeout(c, true, 5*time.Second)
		if err != nil {
			return
		}
		frames := make(chan []byte, 16)
		go in.ReadInto(frames)
		for f := range frames {
			m := new(dt.Dnstap)
			if proto.Unmarshal(f, m) == nil {
				got <- m
			}
		}
	}()
	tap := New(Options{Target: ln.Addr().String(), Identity: "ns1", Version: "v1"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tap.Run(ctx)
	q, r := exchange(t, "a.example.")
	deadline := time.Now().Add(5 * time.Second)
	for !tap.Stats().Connected && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	tap.Tap(q, r, client, true, time.Now())
	for _, want := range []dt.Message_Type{dt.Message_AUTH_QUERY, dt.Message_AUTH_RESPONSE} {
		select {
		case m := <-got:
			msg := m.GetMessage()
			if msg.GetType() != want || string(m.GetIdentity()) != "ns1" || msg.GetSocketProtocol() != dt.SocketProtocol_TCP ||
				netip.AddrFrom4([4]byte(msg.GetQueryAddress())) != client.Addr() || msg.GetQueryPort() != 5353 {
				t.Fatalf("got %v", m)
			}
			if want == dt.Message_AUTH_RESPONSE {
				resp := new(dns.Msg)
				if err := resp.Unpack(msg.GetResponseMessage()); err != nil || resp.Rcode != dns.RcodeNameError {
					t.Fatalf("response %v %v", resp, err)
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("collector got no %v", want)
		}
	}
	if st := tap.Stats(); st.Sent != 1 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestNeverBlocks: with a collector that accepts but never reads, the
// answer path keeps going at full speed; what cannot be sent is dropped
// and counted, and Tap allocates nothing.
func TestNeverBlocks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 16) // accepted, held open, never read
	defer func() {
		ln.Close()
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	tap := New(Options{Target: ln.Addr().String(), Queue: 64, Retry: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tap.Run(ctx)
	q, r := exchange(t, "b.example.")
	const n = 200_000
	start := time.Now()
	for i := 0; i < n; i++ {
		tap.Tap(q, r, client, false, start)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("%d taps took %v: the answer path waited for the collector", n, took)
	}
	st := tap.Stats()
	if st.Dropped == 0 || st.Dropped+st.Sent+uint64(len(tap.queue)) > n {
		t.Fatalf("stats %+v after %d taps with a stuck collector", st, n)
	}
	if a := testing.AllocsPerRun(1000, func() { tap.Tap(q, r, client, false, start) }); a != 0 {
		t.Fatalf("Tap allocates %v times", a)
	}
	big := make([]byte, slotSize)
	before := tap.Stats().TooLarge
	tap.Tap(q, big, client, true, start)
	if tap.Stats().TooLarge != before+1 {
		t.Fatal("an oversized exchange was not counted")
	}
}

// TestUnreachableCollector drops and counts while it retries.
func TestUnreachableCollector(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	tap := New(Options{Target: addr, Queue: 8, Retry: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tap.Run(ctx)
	q, r := exchange(t, "c.example.")
	deadline := time.Now().Add(5 * time.Second)
	for tap.Stats().Dropped < 100 && time.Now().Before(deadline) {
		tap.Tap(q, r, client, false, time.Now())
		time.Sleep(time.Millisecond)
	}
	st := tap.Stats()
	if st.Dropped < 100 || st.Connected || st.Error == "" {
		t.Fatalf("stats %+v", st)
	}
}
