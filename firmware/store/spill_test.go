package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// spillModes are an import held whole until Commit and one spilled
// every few hundred bytes (a run every few records: many runs, merged
// in several rounds, see maxFanIn).
var spillModes = []struct {
	name  string
	spill int64
}{{"held", -1}, {"spilled", 300}}

// forSpillModes runs fn with the store options of each mode.
func forSpillModes(t *testing.T, fn func(t *testing.T, opts Options)) {
	for _, m := range spillModes {
		t.Run(m.name, func(t *testing.T) { fn(t, Options{ImportSpill: m.spill}) })
	}
}

// spillZone is a zone of some thousands of records in no order, with
// duplicates read far apart (so in other runs: the first read wins,
// TTL and all), owners spelled in other cases, and a large RRset (which
// dup indexes rather than scans) with duplicates of its own.
func spillZone() string {
	var lines []string
	for i := range 1500 {
		lines = append(lines,
			fmt.Sprintf("h%d A 10.0.%d.%d", i, i>>8, i&255),
			fmt.Sprintf("h%d TXT \"t%d\"", i, i%7))
		if i%10 == 0 {
			lines = append(lines, fmt.Sprintf("x.h%d AAAA 2001:db8::%x", i, i))
		}
	}
	for i := range 60 {
		lines = append(lines, fmt.Sprintf("big TXT \"%d\"", i%40))
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	var b strings.Builder
	b.WriteString("$ORIGIN s.test.\n$TTL 60\n@ SOA ns1 h 1 60 10 600 60\n@ NS ns1\nns1 A 192.0.2.53\n")
	for i, l := range lines {
		if i%97 == 0 {
			l = strings.ToUpper(l[:2]) + l[2:]
		}
		fmt.Fprintln(&b, l)
	}
	// Duplicates read last, with other TTLs: dropped.
	for i := 0; i < 1500; i += 13 {
		fmt.Fprintf(&b, "h%d 999 A 10.0.%d.%d\n", i, i>>8, i&255)
	}
	b.WriteString("big 999 TXT \"3\"\n")
	return b.String()
}

// An import that spills stores what one held whole stores, and Visit
// sees the same.
func TestImportSpillSameAsHeld(t *testing.T) {
	text := spillZone()
	var visited, read [][]string
	for _, m := range spillModes {
		s, _ := open(t, Options{ImportSpill: m.spill})
		v, r := importVisitRead(t, s, "s.test.", text)
		if m.spill > 0 {
			var withTTL []string
			err := s.ReadZone("s.test.", func(Info) {}, func(owner []byte, typ uint16, ttl uint32, rdata []byte) {
				withTTL = append(withTTL, fmt.Sprintf("%q %d %d %x", owner, typ, ttl, rdata))
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range withTTL {
				if strings.Contains(l, " 999 ") {
					t.Fatalf("a duplicate read later was kept: %s", l)
				}
			}
		}
		if strings.Join(v, "\n") != strings.Join(r, "\n") {
			t.Errorf("%s: Visit and ReadZone differ", m.name)
		}
		visited, read = append(visited, v), append(read, r)
	}
	if len(read[0]) < 3000 {
		t.Fatalf("read %d records", len(read[0]))
	}
	if !slices.Equal(read[0], read[1]) {
		t.Errorf("held and spilled imports stored other content: %d and %d records", len(read[0]), len(read[1]))
	}
	if !slices.Equal(visited[0], visited[1]) {
		t.Errorf("held and spilled imports visited other records")
	}
}

// A spilled import's validation errors name the same files and lines.
func TestImportSpillErrors(t *testing.T) {
	// Each error's records are read far apart, in other runs.
	text := strings.Replace(spillZone(), "ns1 A 192.0.2.53\n", "ns1 A 192.0.2.53\nc CNAME h1\nx.d A 192.0.2.2\n", 1) +
		"c A 192.0.2.1\nd DNAME h2\n"
	var errs []string
	forSpillModes(t, func(t *testing.T, opts Options) {
		s, _ := open(t, opts)
		im, err := s.NewImport("s.test.", 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := zone.ParseStream(strings.NewReader(text), "s.test.", "s.zone", "", im.Add); err != nil {
			t.Fatal(err)
		}
		_, err = im.Commit("file")
		var l zone.ErrorList
		if !errors.As(err, &l) || len(l) != 2 {
			t.Fatalf("want 2 errors, got %v", err)
		}
		for _, e := range l {
			if e.Pos.File != "s.zone" || e.Pos.Line == 0 {
				t.Errorf("error not placed: %v", e)
			}
		}
		errs = append(errs, err.Error())
		if _, err := s.Info("s.test."); !errors.Is(err, ErrNotFound) {
			t.Errorf("a zone that failed was stored: %v", err)
		}
	})
	if len(errs) == 2 && errs[0] != errs[1] {
		t.Errorf("held:\n%s\nspilled:\n%s", errs[0], errs[1])
	}
}

// An import leaves no file in the store's directory and no descriptor
// open, however it ends.
func TestImportSpillLeavesNothing(t *testing.T) {
	text := spillZone()
	// A zone bigger than the limit, which it only reaches after
	// spilling (before the first spill a whole chunk is counted).
	var big strings.Builder
	big.WriteString("$ORIGIN s.test.\n$TTL 60\n@ SOA ns1 h 1 60 10 600 60\n@ NS ns1\n")
	for i := range 25000 {
		fmt.Fprintf(&big, "n%d A 10.0.%d.%d\n", i, i>>8&255, i&255)
	}
	ends := []struct {
		name  string
		limit int64
		end   func(*Import) error
	}{
		{"committed", 0, func(im *Import) error { _, err := im.Commit("file"); return err }},
		{"invalid", 0, func(im *Import) error {
			im.Add(&dns.CNAME{Hdr: dns.RR_Header{Name: "h1.s.test.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "s.test."}, zone.Position{}, "")
			if _, err := im.Commit("file"); err == nil {
				return errors.New("committed")
			}
			return nil
		}},
		{"aborted", 0, func(im *Import) error { im.Abort(); return nil }},
		{"too big", 1200 << 10, func(im *Import) error {
			if _, err := im.Commit("file"); !errors.Is(err, ErrTooBig) {
				return fmt.Errorf("not too big: %v", err)
			}
			return nil
		}},
	}
	for _, e := range ends {
		t.Run(e.name, func(t *testing.T) {
			s, path := open(t, Options{ImportSpill: 300})
			text := text
			if e.limit > 0 {
				s, path = open(t, Options{ImportSpill: 64 << 10})
				text = big.String()
			}
			dir := filepath.Dir(path)
			files, fds := dirNames(t, dir), dirNames(t, "/proc/self/fd")
			im, err := s.NewImport("s.test.", e.limit)
			if err != nil {
				t.Fatal(err)
			}
			spilled := false
			add := func(rr dns.RR, pos zone.Position, problem string) {
				im.Add(rr, pos, problem)
				spilled = spilled || im.sp != nil
			}
			if err := zone.ParseStream(strings.NewReader(text), "s.test.", "s.zone", "", add); err != nil {
				t.Fatal(err)
			}
			if !spilled {
				t.Fatal("did not spill")
			}
			if err := e.end(im); err != nil {
				t.Fatal(err)
			}
			if got := dirNames(t, dir); !slices.Equal(got, files) {
				t.Errorf("store directory was %v, now %v", files, got)
			}
			if got := dirNames(t, "/proc/self/fd"); len(got) != len(fds) {
				t.Errorf("%d descriptors open before, %d after", len(fds), len(got))
			}
		})
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// Open removes spill files a crash left (where O_TMPFILE is not
// supported, between a file's creation and its unlink).
func TestOpenRemovesSpillLeftovers(t *testing.T) {
	s, path := open(t, Options{})
	s.Close()
	left := filepath.Join(filepath.Dir(path), ".import-spill-123")
	if err := os.WriteFile(left, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("leftover still there: %v", err)
	}
}

// A spilling import holds no more than its threshold and the merge's
// buffers, whatever the zone's size; one that does not holds the zone.
func TestImportSpillMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("400,000 records")
	}
	const records = 400_000
	const bound = 12 << 20
	for _, m := range []struct {
		name  string
		spill int64
	}{{"spilled", 4 << 20}, {"held", -1}} {
		t.Run(m.name, func(t *testing.T) {
			s, _ := open(t, Options{ImportSpill: m.spill})
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc
			im, err := s.NewImport("m.test.", 0)
			if err != nil {
				t.Fatal(err)
			}
			hdr := func(name string, t uint16) dns.RR_Header {
				return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 60}
			}
			im.Add(&dns.SOA{Hdr: hdr("m.test.", dns.TypeSOA), Ns: "ns1.m.test.", Mbox: "h.m.test.", Serial: 1, Refresh: 60, Retry: 10, Expire: 600, Minttl: 60}, zone.Position{File: "m", Line: 1}, "")
			im.Add(&dns.NS{Hdr: hdr("m.test.", dns.TypeNS), Ns: "ns1.m.test."}, zone.Position{File: "m", Line: 2}, "")
			a := &dns.A{Hdr: hdr("", dns.TypeA)}
			for i := range records {
				a.Hdr.Name = fmt.Sprintf("host%d.m.test.", i)
				a.A = []byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
				im.Add(a, zone.Position{File: "m", Line: i + 3}, "")
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			live := int64(ms.HeapAlloc) - int64(base)
			whole := im.zoneBytes()
			if _, err := im.Commit("file"); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d records: peak held %.1f MiB (as held whole: %.1f MiB), heap live before Commit +%.1f MiB",
				records+2, float64(im.peak)/(1<<20), float64(whole)/(1<<20), float64(live)/(1<<20))
			if info, err := s.Info("m.test."); err != nil || info.Records != records+2 {
				t.Fatalf("stored %+v, %v", info, err)
			}
			if spilled := m.spill > 0; spilled != (im.peak <= bound && live <= bound) {
				t.Errorf("spilled %v, but peak held %d and live %d against the bound %d", spilled, im.peak, live, bound)
			}
		})
	}
}

// A spill that cannot be written fails the import, naming the
// directory, and stores nothing.
func TestImportSpillIOError(t *testing.T) {
	s, _ := open(t, Options{ImportSpill: 300})
	im, err := s.NewImport("s.test.", 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "gone")
	im.sp = &spill{dir: dir}
	if err := zone.ParseStream(strings.NewReader(spillZone()), "s.test.", "s.zone", "", im.Add); err != nil {
		t.Fatal(err)
	}
	_, err = im.Commit("file")
	if err == nil || !strings.Contains(err.Error(), "s.test.: import spill in "+dir+": ") {
		t.Fatalf("got %v", err)
	}
	t.Log(err)
	if _, err := s.Info("s.test."); !errors.Is(err, ErrNotFound) {
		t.Errorf("stored: %v", err)
	}
}
