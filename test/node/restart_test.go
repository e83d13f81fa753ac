// Package node_test runs the real shoestring binary as an operator does
// with `shoestring run`: its config and the last good one, a restart with
// a store that already holds many zones, binary slots on a plain host,
// and the store carried across two real builds.
package node_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/node"
	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/zone"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// freePort returns a port free on loopback for TCP and UDP just now.
func freePort(t *testing.T) int { return refserver.Port(t) }

// TestRestartWith10kZones fills a store with 10,000 zones, starts the
// binary on it and measures process start to the first correct answer
// for the last zone. The bar is 1 s.
func TestRestartWith10kZones(t *testing.T) {
	bin := testenv.Binary(t)
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, node.StoreFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	var zones []*zone.Zone
	for i := 0; i < n; i++ {
		origin := fmt.Sprintf("z%05d.test.", i)
		text := fmt.Sprintf("$ORIGIN %s\n@ 300 IN SOA ns1 h 1 3600 900 1209600 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\nwww 300 IN A 192.0.2.%d\n", origin, i%250)
		z, err := zone.Parse(strings.NewReader(text), origin, origin, "")
		if err != nil {
			t.Fatal(err)
		}
		zones = append(zones, z)
	}
	for _, z := range zones {
		if _, err := st.PutZone(z); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "dev", "-data", dir, "-listen", addr, "-http", "127.0.0.1:0")
	stderr, _ := cmd.StderrPipe()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if testing.Verbose() {
				t.Log(sc.Text())
			}
		}
	}()
	c := &dns.Client{Timeout: 100 * time.Millisecond}
	want := fmt.Sprintf("192.0.2.%d", (n-1)%250)
	for {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("www.z%05d.test.", n-1), dns.TypeA)
		r, _, err := c.Exchange(m, addr)
		if err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == want {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no answer 10 s after start (last: %v %v)", err, r)
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("10k zones: first answer %v after process start", took.Round(time.Millisecond))
	if took > time.Second {
		t.Fatalf("answering took %v after start; the bar is 1 s", took)
	}
}
