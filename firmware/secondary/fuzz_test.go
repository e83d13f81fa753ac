package secondary

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/xfr"
	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// The key the NOTIFY seeds were signed with (test/testdata/fuzz/README.md).
const fuzzSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="

// FuzzNotify: a NOTIFY as it arrives on the wire (from the zone's
// primary or from another address, as the first input says) is parsed by
// xfr.ParseNotify and handed to a running Manager with one zone, whose
// primary 192.0.2.1 signs with a key; transfers are never attempted on the
// network (the dial refuses). The rcode is one of NOERROR, NOTAUTH,
// REFUSED; NOERROR only for a NOTIFY from the primary's address that
// verifies with its key; a NOTIFY that is not accepted changes nothing in
// the zone's state and starts no refresh.
func FuzzNotify(f *testing.F) {
	const origin = "x.test."
	key, err := xfr.NewKey("fuzz-key", "hmac-sha256", fuzzSecret)
	if err != nil {
		f.Fatal(err)
	}
	primary := netip.MustParseAddrPort("192.0.2.1:53")
	m0 := new(dns.Msg)
	m0.SetNotify(origin)
	m0.Answer = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60}, Ns: "ns.x.test.", Mbox: "h.x.test.", Serial: 5, Refresh: 60, Retry: 30, Expire: 600, Minttl: 60}}
	plain, _ := m0.Pack()
	signed, _ := key.SignRequest(append([]byte(nil), plain...), time.Now())
	f.Add(true, plain)
	f.Add(true, signed)
	f.Add(false, signed)
	dir := filepath.Join("..", "..", "test", "testdata", "fuzz", "FuzzParseNotify")
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && !strings.HasSuffix(e.Name(), ".md") {
				f.Add(true, b)
			}
		}
	}

	var dials atomic.Int64
	b := &memBackend{zones: map[string]*zone.Zone{}, state: map[string][]byte{}}
	m := New(Config{
		Zones:  []ZoneConfig{{Origin: origin, Primaries: []xfr.Remote{{Addr: primary, Key: key}}}},
		Timers: Timers{RefreshMin: time.Hour, RefreshMax: time.Hour, RetryMin: time.Hour, RetryMax: time.Hour, ExpireMin: time.Hour},
		Dial: func(context.Context, string, string) (net.Conn, error) {
			dials.Add(1)
			return nil, errors.New("no network in the fuzzer")
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, b)
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(func() { cancel(); m.Close() })
	if err := m.Start(ctx); err != nil {
		f.Fatal(err)
	}
	settled := func() Status {
		for i := 0; ; i++ {
			st, _ := m.ZoneStatus(origin)
			if !st.Refreshing && st.Failures > 0 {
				return st
			}
			if i > 2000 {
				f.Fatalf("the zone's refresh does not settle: %+v", st)
			}
			time.Sleep(time.Millisecond)
		}
	}
	settled()

	f.Fuzz(func(t *testing.T, fromPrimary bool, raw []byte) {
		from := netip.MustParseAddrPort("198.51.100.9:5353")
		if fromPrimary {
			from = netip.AddrPortFrom(primary.Addr(), 40000)
		}
		n, err := xfr.ParseNotify(raw, from)
		if err != nil {
			return
		}
		before, _ := m.ZoneStatus(origin)
		d0 := dials.Load()
		rc := m.Notify(n)
		switch rc {
		case dns.RcodeSuccess:
			if !fromPrimary || n.Origin != origin {
				t.Fatalf("NOTIFY for %s from %v accepted", n.Origin, from)
			}
			// It must verify with the primary's key, on its own.
			n2, _ := xfr.ParseNotify(raw, from)
			if err := n2.Verify(key); err != nil {
				t.Fatalf("accepted a NOTIFY that does not verify: %v", err)
			}
			// Let the refresh it started fail, for the next input.
			for i := 0; i < 2000; i++ {
				if st, _ := m.ZoneStatus(origin); !st.Refreshing {
					break
				}
				time.Sleep(time.Millisecond)
			}
			return
		case dns.RcodeNotAuth, dns.RcodeRefused:
		default:
			t.Fatalf("rcode %s", dns.RcodeToString[rc])
		}
		if fromPrimary && n.Origin == origin && rc == dns.RcodeRefused {
			t.Fatalf("NOTIFY from the primary's address refused, not NOTAUTH")
		}
		after, _ := m.ZoneStatus(origin)
		if !reflect.DeepEqual(before, after) || dials.Load() != d0 {
			t.Fatalf("a refused NOTIFY (%s) changed the zone: %+v\n-> %+v (dials %d -> %d)", dns.RcodeToString[rc], before, after, d0, dials.Load())
		}
		if r := n.Reply(rc); r != nil {
			if err := new(dns.Msg).Unpack(r); err != nil {
				t.Fatalf("reply does not unpack: %v", err)
			}
		}
	})
}
