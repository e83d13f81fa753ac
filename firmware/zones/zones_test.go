package zones

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/firmware/store"
)

func text(origin string, serial uint32, addr string) []byte {
	return []byte(fmt.Sprintf("$ORIGIN %s\n$TTL 60\n@ SOA ns1 h %d 60 10 600 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A %s\n", origin, serial, addr))
}

func open(t testing.TB, dir string) (*Zones, *dnsserver.Server, *[]Change) {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	zs := New(Options{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var changes []Change
	zs.Subscribe(func(c Change) { changes = append(changes, c) })
	srv := dnsserver.New(dnsserver.Config{})
	if err := zs.Load(srv); err != nil {
		t.Fatal(err)
	}
	return zs, srv, &changes
}

// served is the serial the server answers origin with, 0 for none.
func served(srv *dnsserver.Server, origin string) uint32 {
	if z := srv.Zone(origin); z != nil {
		return z.Serial()
	}
	return 0
}

// Every kind of update goes through the one path: stored, then served,
// its problem state kept, subscribers told; and what is stored is served
// again after a restart.
func TestUpdatePath(t *testing.T) {
	dir := t.TempDir()
	zs, srv, changes := open(t, dir)

	info, err := zs.PutText("a.test", text("a.test.", 1, "192.0.2.1"), "api")
	if err != nil || info.Serial != 1 || !info.Serving || info.ServedSerial != 1 || info.Source != "api" {
		t.Fatalf("put: %+v %v", info, err)
	}
	// A bad version changes nothing.
	if _, err := zs.PutText("a.test", []byte("www A 192.0.2.9\n"), "api"); err == nil {
		t.Fatal("a zone without SOA was accepted")
	}
	if served(srv, "a.test.") != 1 {
		t.Fatal("a rejected upload changed what is served")
	}

	// A zone file that does not parse is a problem; the stored version
	// keeps serving.
	bad := filepath.Join(dir, "a.zone")
	os.WriteFile(bad, []byte("this is not a zone\n"), 0o644)
	zs.ImportConfigured([]config.Zone{{Origin: "a.test", File: bad}})
	if p := zs.Problems(); len(p) != 1 || !strings.HasPrefix(p[0], "a.test.: ") || served(srv, "a.test.") != 1 {
		t.Fatalf("problems %q, served %d", p, served(srv, "a.test."))
	}
	good := filepath.Join(dir, "a2.zone")
	os.WriteFile(good, text("a.test.", 2, "192.0.2.2"), 0o644)
	zs.ImportConfigured([]config.Zone{{Origin: "a.test", File: good}})
	if p := zs.Problems(); len(p) != 0 || served(srv, "a.test.") != 2 {
		t.Fatalf("after a good file: problems %q, served %d", p, served(srv, "a.test."))
	}

	// IXFR: journalled, rebuilt, served.
	www2, _ := dns.NewRR("www.a.test. 60 IN A 192.0.2.2")
	www3, _ := dns.NewRR("www.a.test. 60 IN A 192.0.2.3")
	soa2, _ := dns.NewRR("a.test. 60 IN SOA ns1.a.test. h.a.test. 2 60 10 600 60")
	soa3, _ := dns.NewRR("a.test. 60 IN SOA ns1.a.test. h.a.test. 3 60 10 600 60")
	if err := zs.ApplyDeltas("a.test.", []store.Delta{{FromSerial: 2, ToSerial: 3, Removed: []dns.RR{soa2, www2}, Added: []dns.RR{soa3, www3}}}); err != nil {
		t.Fatal(err)
	}
	if served(srv, "a.test.") != 3 {
		t.Fatalf("after IXFR serving %d", served(srv, "a.test."))
	}
	if j, err := zs.Journal("a.test.", 2); err != nil || len(j) != 1 {
		t.Fatalf("journal: %v %v", j, err)
	}

	// Expiry is a problem, and answering again clears it.
	zs.SetExpired("a.test.", true, "no primary answered")
	if soa, expired := zs.SOA("a.test."); soa == nil || !expired || len(zs.Problems()) != 1 {
		t.Fatalf("expired: %v %v %q", soa, expired, zs.Problems())
	}
	zs.SetExpired("a.test.", false, "")
	if _, expired := zs.SOA("a.test."); expired || len(zs.Problems()) != 0 {
		t.Fatalf("not expired again: %v %q", expired, zs.Problems())
	}

	if _, err := zs.PutText("b.test", text("b.test.", 5, "192.0.2.5"), "transfer"); err != nil {
		t.Fatal(err)
	}
	if err := zs.Delete("b.test"); err != nil || served(srv, "b.test.") != 0 {
		t.Fatalf("delete: %v, served %d", err, served(srv, "b.test."))
	}
	if err := zs.Delete("b.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, _, err := zs.Get("b.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}

	want := []Change{{"a.test.", "api", false}, {"a.test.", "file", false}, {"a.test.", "transfer", false}, {"b.test.", "transfer", false}, {"b.test.", "", true}}
	if fmt.Sprint(*changes) != fmt.Sprint(want) {
		t.Fatalf("changes told:\n got %v\nwant %v", *changes, want)
	}

	// What was stored is what a restarted node serves.
	zs.store.Close()
	_, srv2, _ := open(t, dir)
	if served(srv2, "a.test.") != 3 || served(srv2, "b.test.") != 0 {
		t.Fatalf("after restart: a %d, b %d", served(srv2, "a.test."), served(srv2, "b.test."))
	}
}

// A big zone goes through big-zone mode and is served like any other.
func TestBigZone(t *testing.T) {
	zs, srv, changes := open(t, t.TempDir())
	var b strings.Builder
	b.Write(text("big.test.", 9, "192.0.2.1"))
	for i := 0; i <= BigZone; i++ {
		fmt.Fprintf(&b, "h%d A 10.%d.%d.%d\n", i, i>>16&255, i>>8&255, i&255)
	}
	info, err := zs.PutText("big.test.", []byte(b.String()), "transfer")
	if err != nil || info.Records <= BigZone || served(srv, "big.test.") != 9 || len(*changes) != 1 {
		t.Fatalf("big zone: %+v %v, served %d, changes %v", info, err, served(srv, "big.test."), *changes)
	}
}

// A zone version that would take the node past dns.memory_limit is
// refused with an error naming the budget, the version served keeps
// serving, and the refusal is counted; a version that fits goes through.
func TestMemoryBudget(t *testing.T) {
	zs, srv, _ := open(t, t.TempDir())
	if _, err := zs.PutText("big.test", text("big.test.", 1, "192.0.2.1"), "api"); err != nil {
		t.Fatal(err)
	}
	// A budget that leaves the import a few MiB: 200,000 records need
	// about 15.
	ReleaseMemory()
	zs.budget.limit = heapLive() + 12<<20
	var b strings.Builder
	b.WriteString(string(text("big.test.", 2, "192.0.2.2")))
	for i := range 200_000 {
		fmt.Fprintf(&b, "h%d A 192.0.2.%d\n", i, i%250)
	}
	_, err := zs.PutText("big.test", []byte(b.String()), "api")
	if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "dns.memory_limit") {
		t.Fatalf("over the budget: got %v, want ErrOverBudget naming dns.memory_limit", err)
	}
	if got := served(srv, "big.test."); got != 1 {
		t.Errorf("after the refusal serving serial %d, want the old 1", got)
	}
	if m := zs.MemoryStatus(); m.Refused != 1 || m.Limit != zs.budget.limit {
		t.Errorf("status %+v, want 1 refused and the limit", m)
	}
	if _, err := zs.PutText("big.test", text("big.test.", 3, "192.0.2.3"), "api"); err != nil {
		t.Fatalf("a small version within the budget: %v", err)
	}
	if got := served(srv, "big.test."); got != 3 {
		t.Errorf("serving serial %d, want 3", got)
	}
}

// A big file's records are estimated from the lines of its first block,
// a little over, so the import's index is made once and not copied as
// it grows; without a line end the estimate falls back to a typical
// record's size.
func TestExpectRecords(t *testing.T) {
	head := []byte(strings.Repeat("host1.bench.test.\t3600\tIN\tA\t10.0.0.1\n", 100)) // 37 bytes a line
	if got := expectRecords(37_000_000, head); got < 1_000_000 || got > 1_050_000 {
		t.Errorf("37 MB of 37-byte lines: expect %d records, want 1,000,000 to 1,050,000", got)
	}
	if got := expectRecords(56_000_000, []byte("no line end")); got != 1_000_000 {
		t.Errorf("no line end: expect %d, want 1,000,000", got)
	}
}

// At boot, a stored zone whose snapshot would take the node past
// dns.memory_limit is not built — not served, its problem saying why,
// counted — instead of the node being OOM-killed at every boot; it stays
// in the store, and is served again once the budget allows.
func TestMemoryBudgetAtBoot(t *testing.T) {
	dir := t.TempDir()
	zs, _, _ := open(t, dir)
	if _, err := zs.PutText("a.test", text("a.test.", 1, "192.0.2.1"), "api"); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(string(text("big.test.", 7, "192.0.2.2")))
	for i := range BigZone + 1000 {
		fmt.Fprintf(&b, "h%d A 10.%d.%d.%d\n", i, i>>16&255, i>>8&255, i&255)
	}
	if _, err := zs.PutText("big.test", []byte(b.String()), "api"); err != nil {
		t.Fatal(err)
	}
	zs.store.Close()

	boot := func(limit int64) (*Zones, *dnsserver.Server) {
		st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		zs := New(Options{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MemoryLimit: limit})
		srv := dnsserver.New(dnsserver.Config{})
		if err := zs.Load(srv); err != nil {
			t.Fatal(err)
		}
		return zs, srv
	}
	// Room for the small zone, not for 100,000 records (some 14 MiB).
	ReleaseMemory()
	zs, srv := boot(heapLive() + 4<<20)
	if served(srv, "a.test.") != 1 {
		t.Errorf("a.test. not served within the budget")
	}
	if served(srv, "big.test.") != 0 {
		t.Fatalf("big.test. served past the budget")
	}
	infos, err := zs.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Origin == "big.test." && (in.Serving || !strings.Contains(in.Problem, "dns.memory_limit") || in.Serial != 7) {
			t.Errorf("big.test. after a refused boot: %+v; want kept in the store, not serving, the problem naming dns.memory_limit", in)
		}
	}
	if m := zs.MemoryStatus(); m.Refused != 1 {
		t.Errorf("refused %d, want 1", m.Refused)
	}
	zs.store.Close()
	// Without a budget the same store serves both.
	_, srv = boot(-1)
	if served(srv, "a.test.") != 1 || served(srv, "big.test.") != 7 {
		t.Errorf("no budget: serving a %d, big %d; want 1 and 7", served(srv, "a.test."), served(srv, "big.test."))
	}
}
