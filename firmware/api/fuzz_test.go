package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/firmware/secondary"
	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/zone"
	"github.com/shoestring-dns/shoestring/firmware/zones"
)

var discard = slog.New(slog.DiscardHandler)

// call sends one request to mux and returns the status and body.
func call(mux http.Handler, method, path string, body []byte) (int, string) {
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(string(body))))
	return rec.Code, rec.Body.String()
}

// muxNotFound: the mux's 404, the handler never ran.
func muxNotFound(code int, body string) bool {
	return code == http.StatusNotFound && body == "404 page not found\n"
}

// checkJSONError: every failed call answers with an Error body, except
// the mux's own 404 for a path no route matches (an origin with an
// escaped "/" in it).
func checkJSONError(t *testing.T, code int, body string) {
	t.Helper()
	if muxNotFound(code, body) {
		return
	}
	var e Error
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("%d with a body that is not an Error: %q", code, body)
	}
}

type nodeBackend struct{}

func (nodeBackend) Status() Status          { return Status{Name: "fuzz"} }
func (nodeBackend) Healthy() (bool, string) { return true, "" }

// FuzzPutZone uploads a fuzzed zone file under a fuzzed origin through
// the real handler, the real zones (parser, validation, store in a
// temporary bbolt, snapshot build) and a real DNS server. Never a 5xx or
// a panic; a rejected upload is a 4xx with an Error body and changes
// nothing; an accepted one is a 200 whose zone is then listed, served and
// readable with the serial reported.
func FuzzPutZone(f *testing.F) {
	f.Add("a.test", []byte("$ORIGIN a.test.\n$TTL 60\n@ SOA ns1 h 1 60 10 600 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n"))
	f.Add("a.test.", []byte("@ 60 SOA ns1 h 1 60 10 600 60\n@ 60 NS ns1.b.test.\n* 60 TXT \"x\"\nsub 60 NS ns.sub\nns.sub 60 AAAA ::1\n"))
	f.Add("b.test", []byte("$ORIGIN b.test.\n@ SOA ns1 h 1 60 10 600 60\n"))
	f.Add("..", []byte("garbage ( \n"))
	f.Add("c.test", []byte("$INCLUDE /etc/passwd\n"))
	f.Add("c.test", []byte("@ 60 SOA ns1 h 1 60 10 600 60\n@ 60 NS ns1\n@ 60 CNAME x\nx 60 DNAME y\n@ 60 TYPE65534 \\# 0\n"))

	st, err := store.Open(filepath.Join(f.TempDir(), "db"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	zs := zones.New(zones.Options{Store: st, Log: discard})
	srv := dnsserver.New(dnsserver.Config{})
	if err := zs.Load(srv); err != nil {
		f.Fatal(err)
	}
	mux := Handler(nodeBackend{}, zs, discard)
	f.Fuzz(func(t *testing.T, origin string, text []byte) {
		if len(text) > 64<<10 || len(origin) > 300 || origin == "" {
			return
		}
		before, err := zs.List()
		if err != nil {
			t.Fatal(err)
		}
		code, body := call(mux, "PUT", "/api/v1/zones/"+url.PathEscape(origin), text)
		switch {
		case code >= 500:
			t.Fatalf("PUT %q: %d %s", origin, code, body)
		case code >= 300:
			// 4xx with an Error body; 3xx only from the mux cleaning
			// the path ("..").
			if code >= 400 {
				checkJSONError(t, code, body)
			}
			after, err := zs.List()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("a rejected upload (%d) changed the zones:\n%+v\n%+v", code, before, after)
			}
		case code == 200:
			var zi ZoneInfo
			if err := json.Unmarshal([]byte(body), &zi); err != nil {
				t.Fatalf("200 with %q: %v", body, err)
			}
			if zi.Origin != zone.Canonical(origin) || !zi.Serving || zi.ServedSerial != zi.Serial {
				t.Fatalf("PUT %q: %+v", origin, zi)
			}
			if s := srv.Zone(zi.Origin); s == nil || s.Serial() != zi.Serial {
				t.Fatalf("PUT %q accepted but not served", origin)
			}
			code, body := call(mux, "GET", "/api/v1/zones/"+url.PathEscape(zi.Origin), nil)
			if code != 200 {
				t.Fatalf("GET %q after PUT: %d %s", zi.Origin, code, body)
			}
			// Keep the store small: the next input starts from nothing.
			if code, body := call(mux, "DELETE", "/api/v1/zones/"+url.PathEscape(zi.Origin), nil); code != 200 {
				t.Fatalf("DELETE %q: %d %s", zi.Origin, code, body)
			}
		default:
			t.Fatalf("PUT %q: %d %s", origin, code, body)
		}
	})
}

// memZones is the secondary Manager's backend, in memory.
type memZones struct {
	mu    sync.Mutex
	state map[string][]byte
}

func (b *memZones) SOA(string) *dns.SOA             { return nil }
func (b *memZones) Zone(string) (*zone.Zone, error) { return nil, store.ErrNotFound }
func (b *memZones) PutZone(*zone.Zone) error        { return errors.New("no transfers here") }
func (b *memZones) NewTransfer(string) (secondary.Transfer, error) {
	return nil, errors.New("no transfers here")
}
func (b *memZones) PutTransfer(secondary.Transfer) error    { return errors.New("no transfers here") }
func (b *memZones) ApplyDeltas(string, []store.Delta) error { return errors.New("no transfers here") }
func (b *memZones) SetExpired(string, bool, string)         {}
func (b *memZones) Remove(string) error                     { return nil }
func (b *memZones) Sources() (map[string]string, error)     { return map[string]string{}, nil }
func (b *memZones) LoadState(key string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state[key], nil
}
func (b *memZones) SaveState(key string, val []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state[key] = val
	return nil
}

// managerSecondary is the Secondary endpoints' backend: the real
// secondary Manager (which parses the primaries and origins), wrapped as
// secondary.Service wraps it.
type managerSecondary struct{ m *secondary.Manager }

func (s managerSecondary) Status() secondary.ServiceStatus {
	return secondary.ServiceStatus{Zones: s.m.Status()}
}
func (s managerSecondary) ZoneStatus(origin string) (secondary.Status, error) {
	st, ok := s.m.ZoneStatus(origin)
	if !ok {
		return st, secondary.ErrNotSecondary
	}
	return st, nil
}
func (s managerSecondary) Refresh(origin string, full bool) error { return s.m.Refresh(origin, full) }
func (s managerSecondary) AddZone(origin string, primaries []string) (secondary.Status, error) {
	if err := s.m.AddZone(origin, primaries); err != nil {
		return secondary.Status{}, err
	}
	return s.ZoneStatus(origin)
}
func (s managerSecondary) RemoveZone(origin string) error { return s.m.RemoveZone(origin) }

// FuzzAddSecondary sends fuzzed bodies (and origins) to PUT
// /api/v1/secondary/zones/{origin}, backed by a running secondary
// Manager that never reaches the network (its dial refuses). Never a 5xx
// or a panic; malformed JSON is a 400; a rejected body adds no zone; an
// accepted one is a 200 for the canonical origin, listed with the
// primaries given, and removable.
func FuzzAddSecondary(f *testing.F) {
	f.Add("a.test", []byte(`{"primaries": ["192.0.2.1"]}`))
	f.Add("a.test.", []byte(`{"primaries": ["192.0.2.1:5353@fuzz-key", "[2001:db8::1]:53"]}`))
	f.Add("a.test", []byte(`{"primaries": ["primary.tailnet:53"]}`))
	f.Add("a.test", []byte(`{"primaries": []}`))
	f.Add("a.test", []byte(`{"primaries": ["192.0.2.1@nokey"]}`))
	f.Add("..", []byte(`{"primaries": "x"}`))
	f.Add("a.test", []byte(`{`))
	m := secondary.New(secondary.Config{
		Timers: secondary.Timers{RefreshMin: time.Hour, RefreshMax: time.Hour, RetryMin: time.Hour, RetryMax: time.Hour, ExpireMin: time.Hour},
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no network in the fuzzer")
		},
		Log: discard,
	}, &memZones{state: map[string][]byte{}})
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(func() { cancel(); m.Close() })
	if err := m.Start(ctx); err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	SecondaryRoutes(mux, managerSecondary{m}, discard)
	f.Fuzz(func(t *testing.T, origin string, body []byte) {
		if len(body) > 1<<16 || len(origin) > 300 || origin == "" {
			return
		}
		before := m.Origins()
		code, resp := call(mux, "PUT", "/api/v1/secondary/zones/"+url.PathEscape(origin), body)
		switch {
		case code >= 500:
			t.Fatalf("PUT %q %q: %d %s", origin, body, code, resp)
		case code >= 300:
			var req AddSecondaryRequest
			if code >= 400 {
				checkJSONError(t, code, resp)
			}
			if code >= 400 && !muxNotFound(code, resp) && json.Unmarshal(body, &req) != nil && code != 400 {
				t.Fatalf("malformed JSON: %d", code)
			}
			if after := m.Origins(); !reflect.DeepEqual(before, after) {
				t.Fatalf("a rejected add changed the zones: %v -> %v", before, after)
			}
		case code == 200:
			var z SecondaryZone
			if err := json.Unmarshal([]byte(resp), &z); err != nil {
				t.Fatal(err)
			}
			if z.Origin != zone.Canonical(origin) || z.Kind != "api" || len(z.Primaries) == 0 {
				t.Fatalf("PUT %q: %+v", origin, z)
			}
			if _, ok := dns.IsDomainName(z.Origin); !ok {
				t.Fatalf("secondary zone %q added: not a domain name", z.Origin)
			}
			if code, resp := call(mux, "DELETE", "/api/v1/secondary/zones/"+url.PathEscape(z.Origin), nil); code != 200 {
				t.Fatalf("DELETE %q: %d %s", z.Origin, code, resp)
			}
		default:
			t.Fatalf("PUT %q: %d %s", origin, code, resp)
		}
	})
}

// FuzzMaintenance sends fuzzed bodies to the drain and restore endpoints
// (fake routing, as TestRoutingRoutes): never a 5xx or a panic; malformed
// JSON is a 400; a rejected body drains nothing.
func FuzzMaintenance(f *testing.F) {
	for _, b := range []string{``, `{}`, `{"prefix": "all"}`, `{"prefix": "192.0.2.0/24"}`, `{"prefix": "192.0.2.53"}`,
		`{"prefix": "2001:db8::/48"}`, `{"prefix": "300.1.1.1/33"}`, `{"prefix": 7}`, `[`, `{"prefix": "192.0.2.0/24", "x": 1}`} {
		f.Add(false, []byte(b))
		f.Add(true, []byte(b))
	}
	f.Fuzz(func(t *testing.T, drain bool, body []byte) {
		fr := &fakeRouting{drained: []netip.Prefix{}}
		mux := http.NewServeMux()
		RoutingRoutes(mux, fr, discard)
		path := "/api/v1/routing/restore"
		if drain {
			path = "/api/v1/routing/drain"
		}
		code, resp := call(mux, "POST", path, body)
		switch {
		case code >= 500:
			t.Fatalf("POST %s %q: %d %s", path, body, code, resp)
		case code >= 400:
			checkJSONError(t, code, resp)
			if len(fr.drained) != 0 {
				t.Fatalf("a rejected body (%d) drained %v", code, fr.drained)
			}
		case code == 200:
			var ps []Prefix
			if err := json.Unmarshal([]byte(resp), &ps); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("POST %s: %d %s", path, code, resp)
		}
	})
}
