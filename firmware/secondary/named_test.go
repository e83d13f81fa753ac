package secondary

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/xfr"
	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// memBackend keeps zones and state in memory.
type memBackend struct {
	mu    sync.Mutex
	zones map[string]*zone.Zone
	state map[string][]byte
}

func (b *memBackend) SOA(origin string) *dns.SOA {
	b.mu.Lock()
	defer b.mu.Unlock()
	if z := b.zones[origin]; z != nil {
		for _, rr := range z.Records {
			if soa, ok := rr.(*dns.SOA); ok {
				return soa
			}
		}
	}
	return nil
}

func (b *memBackend) Zone(origin string) (*zone.Zone, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if z := b.zones[origin]; z != nil {
		return z, nil
	}
	return nil, store.ErrNotFound
}

func (b *memBackend) PutZone(z *zone.Zone) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.zones[z.Origin] = z
	return nil
}

// memTransfer collects a transferred zone's records.
type memTransfer struct{ z *zone.Zone }

func (t *memTransfer) Add(rr dns.RR) { t.z.Records = append(t.z.Records, rr) }
func (t *memTransfer) Records() int  { return len(t.z.Records) }
func (t *memTransfer) Abort()        {}

func (b *memBackend) NewTransfer(origin string) (Transfer, error) {
	return &memTransfer{z: &zone.Zone{Origin: origin}}, nil
}

func (b *memBackend) PutTransfer(t Transfer) error {
	z := t.(*memTransfer).z
	if err := z.Validate(); err != nil {
		return err
	}
	return b.PutZone(z)
}

func (b *memBackend) ApplyDeltas(string, []store.Delta) error { return errors.New("no IXFR here") }
func (b *memBackend) SetExpired(string, bool, string)         {}

func (b *memBackend) Remove(origin string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.zones, origin)
	return nil
}

func (b *memBackend) Sources() (map[string]string, error) { return map[string]string{}, nil }

func (b *memBackend) LoadState(key string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state[key], nil
}

func (b *memBackend) SaveState(key string, val []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state[key] = val
	return nil
}

// fakePrimary serves origin (SOA over UDP and TCP, AXFR over TCP) on
// loopback.
func fakePrimary(t *testing.T, origin string) string {
	t.Helper()
	soa, _ := dns.NewRR(origin + " 60 IN SOA ns1." + origin + " h." + origin + " 1 60 10 600 60")
	ns, _ := dns.NewRR(origin + " 60 IN NS ns1." + origin)
	a, _ := dns.NewRR("ns1." + origin + " 60 IN A 192.0.2.53")
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if r.Question[0].Qtype == dns.TypeAXFR {
			ch := make(chan *dns.Envelope)
			done := make(chan struct{})
			go func() { new(dns.Transfer).Out(w, r, ch); close(done) }()
			ch <- &dns.Envelope{RR: []dns.RR{soa, ns, a, soa}}
			close(ch)
			<-done
			return
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		m.Answer = []dns.RR{soa}
		w.WriteMsg(m)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*dns.Server{{Listener: ln, Handler: h}, {PacketConn: pc, Handler: h}} {
		go s.ActivateAndServe()
		t.Cleanup(func() { s.Shutdown() })
	}
	return ln.Addr().String()
}

// tailnetConn is a connection as the tailnet hands it out: from the
// peer's tailnet address.
type tailnetConn struct {
	net.Conn
	remote netip.AddrPort
}

func (c tailnetConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

// A primary named by its (tailnet) name is dialled by that name through
// the injected dial, and its NOTIFYs are known by the address it was
// reached at: before the first contact, a NOTIFY from an unknown address
// starts a refresh (which learns it) and is refused; then the primary's
// NOTIFYs are accepted, and others' still refused.
func TestNamedPrimary(t *testing.T) {
	const origin = "named.test."
	real := fakePrimary(t, origin)
	primaryAt := netip.MustParseAddrPort("100.64.0.7:53")
	var reachable atomic.Bool
	var dialled sync.Map
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialled.Store(network+" "+addr, true)
		if addr != "primary:53" || !reachable.Load() {
			return nil, errors.New("no such host")
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, real)
		if err != nil {
			return nil, err
		}
		return tailnetConn{c, primaryAt}, nil
	}
	r, err := ParseRemote("primary", nil)
	if err != nil || r.Name != "primary:53" || r.Addr.IsValid() {
		t.Fatalf("ParseRemote: %+v %v", r, err)
	}
	b := &memBackend{zones: map[string]*zone.Zone{}, state: map[string][]byte{}}
	m := New(Config{
		Zones:  []ZoneConfig{{Origin: origin, Primaries: []xfr.Remote{r}}},
		Timers: Timers{RefreshMin: time.Hour, RefreshMax: time.Hour, RetryMin: time.Hour, RetryMax: time.Hour, ExpireMin: time.Hour},
		Limits: xfr.Limits{IdleTimeout: 5 * time.Second},
		Dial:   dial,
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); m.Close() }()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The first refresh fails: the name does not resolve yet.
	waitFor(t, "the first refresh to fail", func() bool {
		st, _ := m.ZoneStatus(origin)
		return st.Failures > 0 && !st.Refreshing
	})
	if _, ok := dialled.Load("tcp primary:53"); !ok {
		t.Fatal("the primary was not dialled by its name through the injected dial")
	}

	notify := func(from string) int {
		msg := new(dns.Msg)
		msg.SetNotify(origin)
		raw, _ := msg.Pack()
		n, err := xfr.ParseNotify(raw, netip.MustParseAddrPort(from))
		if err != nil {
			t.Fatal(err)
		}
		return m.Notify(n)
	}
	reachable.Store(true)
	if rc := notify("100.64.0.7:40000"); rc != dns.RcodeRefused {
		t.Fatalf("NOTIFY before the primary's address is known: %s, want REFUSED", dns.RcodeToString[rc])
	}
	waitFor(t, "the refresh the NOTIFY started to transfer the zone", func() bool { return b.SOA(origin) != nil })
	if rc := notify("100.64.0.7:40001"); rc != dns.RcodeSuccess {
		t.Fatalf("NOTIFY from the named primary's address: %s, want NOERROR", dns.RcodeToString[rc])
	}
	if rc := notify("100.64.0.8:40000"); rc != dns.RcodeRefused {
		t.Fatalf("NOTIFY from another address: %s, want REFUSED", dns.RcodeToString[rc])
	}
	st, _ := m.ZoneStatus(origin)
	if len(st.Primaries) != 1 || st.Primaries[0] != "primary:53" || !strings.Contains(st.LastResult+st.Primary, "primary:53") {
		t.Fatalf("status: %+v", st)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
