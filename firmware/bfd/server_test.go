package bfd

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// events collects OnChange calls.
type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

func (e *events) last() (Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.evs) == 0 {
		return Event{}, false
	}
	return e.evs[len(e.evs)-1], true
}

func startServer(t *testing.T, cfg Config) (*Server, context.CancelFunc) {
	t.Helper()
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

func freeUDPPort(t *testing.T, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("cannot bind %s: %v", ip, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// Two of our servers on loopback addresses bring a session up, detect the
// loss of the other, and see an administrative shutdown for what it is.
func TestLoopbackPair(t *testing.T) {
	pa, pb := freeUDPPort(t, "127.0.0.1"), freeUDPPort(t, "127.0.0.2")
	a4, b4 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	var evA, evB events
	ms := 20 * time.Millisecond
	a, _ := startServer(t, Config{ListenAddrs: []string{"127.0.0.1:" + strconv.Itoa(pa)}, OnChange: evA.add,
		Sessions: []SessionConfig{{Peer: b4, Local: a4, Port: pb, DesiredMinTx: ms, RequiredMinRx: ms}}})
	b, stopB := startServer(t, Config{ListenAddrs: []string{"127.0.0.2:" + strconv.Itoa(pb)}, OnChange: evB.add,
		Sessions: []SessionConfig{{Peer: a4, Local: b4, Port: pa, DesiredMinTx: ms, RequiredMinRx: ms}}})
	took := eventually(t, 4*time.Second, "both Up", func() bool {
		return a.Status()[0].State == Up && b.Status()[0].State == Up
	})
	t.Logf("Up after %v", took)
	// After the Poll Sequence both run at 20 ms and detect in 60 ms.
	eventually(t, time.Second, "fast timers", func() bool {
		st := a.Status()[0]
		return st.TxInterval == ms && st.DetectionTime == 3*ms
	})
	// b stops: it says AdminDown, and a goes Down with "neighbor
	// signaled down" from an AdminDown neighbour, which is not a failure.
	stopB()
	eventually(t, time.Second, "a Down", func() bool { return a.Status()[0].State == Down })
	ev, _ := evA.last()
	if ev.From != Up || ev.To != Down || ev.Diag != DiagNeighborSignaledDown || ev.Remote != AdminDown {
		t.Errorf("event %+v", ev)
	}
	if ev, _ := evB.last(); ev.To != AdminDown {
		t.Errorf("b's last event %+v", ev)
	}
}

// Packets that arrive with a TTL below 255 are ignored (GTSM), so nothing
// off-link can drive a session.
func TestGTSM(t *testing.T) {
	port := freeUDPPort(t, "127.0.0.1")
	peer := netip.MustParseAddr("127.0.0.2")
	s, _ := startServer(t, Config{ListenAddrs: []string{"127.0.0.1:" + strconv.Itoa(port)},
		Sessions: []SessionConfig{{Peer: peer, Local: netip.MustParseAddr("127.0.0.1"), Port: freeUDPPort(t, "127.0.0.2")}}})
	c, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc := ipv4.NewPacketConn(c)
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	down := (&packet{state: Down, detectMult: 3, myDiscr: 77, desiredMinTx: time.Second, requiredMinRx: time.Second}).marshal()

	pc.SetTTL(254)
	for range 3 {
		if _, err := c.WriteTo(down, dst); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if st := s.Status()[0]; st.State != Down || st.RemoteState != Down || st.DetectionTime != 0 {
		t.Fatalf("a TTL 254 packet was processed: %+v", st)
	}
	pc.SetTTL(255)
	if _, err := c.WriteTo(down, dst); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "Init on a TTL 255 packet", func() bool { return s.Status()[0].State == Init })
}

func TestConfigValidation(t *testing.T) {
	p := netip.MustParseAddr("192.0.2.1")
	for name, c := range map[string]Config{
		"no peer":   {Sessions: []SessionConfig{{}}},
		"duplicate": {Sessions: []SessionConfig{{Peer: p}, {Peer: p}}},
		"family":    {Sessions: []SessionConfig{{Peer: p, Local: netip.MustParseAddr("::1")}}},
		"interval":  {Sessions: []SessionConfig{{Peer: p, DesiredMinTx: time.Microsecond}}},
	} {
		if _, err := New(c, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	s, err := New(Config{Sessions: []SessionConfig{{Peer: p}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.sessions[0].cfg; c.DesiredMinTx != DefaultMinTx || c.DetectMult != 3 || c.Port != 3784 || c.Name != "192.0.2.1" ||
		len(s.cfg.ListenAddrs) != 2 {
		t.Errorf("defaults: %+v %v", c, s.cfg.ListenAddrs)
	}
}
