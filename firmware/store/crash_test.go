package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// The crash test kills a real process writing the store at random moments
// (SIGKILL: no deferred code, no flush, no Close) and checks that the store
// then holds exactly the last acknowledged version of the zone or the one
// being written, never a mix, and nothing acknowledged is lost.

const (
	crashEnv     = "SHOESTRING_STORE_CRASH_HELPER"
	crashOrigin  = "crash.example."
	crashRecords = 50000
)

// crashZone is the zone at serial: every RRset's data depends on the
// serial's parity (versions A and B), and a thousand names exist only in
// one of the two, so each write rewrites, adds and deletes RRsets.
func crashZone(serial uint32) *zone.Zone {
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 300}
	}
	z := &zone.Zone{Origin: crashOrigin, Records: make([]dns.RR, 0, crashRecords+2)}
	z.Records = append(z.Records,
		&dns.SOA{Hdr: hdr(crashOrigin, dns.TypeSOA), Ns: "ns." + crashOrigin, Mbox: "hm." + crashOrigin,
			Serial: serial, Refresh: 7200, Retry: 3600, Expire: 1209600, Minttl: 300},
		&dns.NS{Hdr: hdr(crashOrigin, dns.TypeNS), Ns: "ns.example.net."})
	v := byte(serial % 2)
	prefix := []string{"a", "b"}[v]
	for i := range crashRecords - 1000 {
		z.Records = append(z.Records, &dns.A{Hdr: hdr("h"+strconv.Itoa(i)+"."+crashOrigin, dns.TypeA),
			A: net.IPv4(10, byte(i>>8), byte(i), 1+v)})
	}
	for i := range 1000 {
		z.Records = append(z.Records, &dns.TXT{Hdr: hdr(prefix+strconv.Itoa(i)+"."+crashOrigin, dns.TypeTXT),
			Txt: []string{"version " + prefix}})
	}
	return z
}

// TestHelperImporter is the child process of TestCrashSafety: it writes
// versions with rising serials, saying "tick <serial>" after each commit.
func TestHelperImporter(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	serial := uint32(1)
	if info, err := s.Info(crashOrigin); err == nil {
		serial = info.Serial + 1
	}
	for ; ; serial++ {
		if _, err := s.PutZoneFrom(crashZone(serial), "transfer"); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("tick", serial)
	}
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills writer processes; slow")
	}
	path := filepath.Join(t.TempDir(), "store.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const rounds = 6
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperImporter$", "-test.timeout=5m")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		cmd.Stderr = os.Stderr
		// Should this test die, the writer must not run on forever.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ticks := make(chan uint32, 1000)
		go func() {
			defer close(ticks)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				if s, ok := strings.CutPrefix(line, "tick "); ok {
					n, _ := strconv.ParseUint(s, 10, 32)
					ticks <- uint32(n)
				} else if strings.HasPrefix(line, "error") {
					t.Error("helper:", line)
				}
			}
		}()

		// Two ticks give the time one write takes; kill at a random
		// moment within the next one.
		var last uint32
		var t1 time.Time
		for i := range 2 {
			select {
			case n, ok := <-ticks:
				if !ok {
					t.Fatal("helper exited")
				}
				last = n
				if i == 0 {
					t1 = time.Now()
				}
			case <-time.After(2 * time.Minute):
				cmd.Process.Kill()
				t.Fatal("no tick from helper")
			}
		}
		interval := time.Since(t1)
		delay := time.Duration(rng.Int64N(int64(interval) + 1))
		time.Sleep(delay)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		for n := range ticks { // acknowledged before it died
			last = n
		}

		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkConsistent(t, s)
		z, err := s.Zone(crashOrigin)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := s.Info(crashOrigin)
		serial := z.Serial()
		t.Logf("round %d: killed %v into a %v write; last acknowledged serial %d, stored %d", round, delay.Round(time.Millisecond), interval.Round(time.Millisecond), last, serial)
		if serial != last && serial != last+1 {
			t.Fatalf("stored serial %d, last acknowledged %d", serial, last)
		}
		if err := z.Validate(); err != nil {
			t.Fatal(err)
		}
		if info.Serial != serial || info.Records != len(z.Records) {
			t.Errorf("info %+v for %d records at serial %d", info, len(z.Records), serial)
		}
		sameRecords(t, z.Records, crashZone(serial).Records)
		if ds, err := s.Journal(crashOrigin, serial-1); err == nil && (len(ds) != 1 || ds[0].ToSerial != serial) {
			t.Errorf("journal to %d: %+v", serial, ds)
		}
		s.Close()
	}
}

// checkConsistent runs bbolt's own structural check of the file.
func checkConsistent(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Error("bbolt check:", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
