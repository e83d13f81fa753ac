package interop

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// millionCeiling is the most peak RSS (VmHWM) a node may reach taking a
// 1,000,000-record zone (500,000 names with an A and an AAAA), whether
// from its zone file, by AXFR from Knot, or from its own store after a
// restart. The bar (issue 13) is Knot's own peak loading the same file:
// 233 MiB in `make bench BENCHFLAGS=-million` on this machine. A node
// that serves this zone runs at about 155-160 MiB once loaded; the
// snapshot's tables are made once at their final size and the build
// reuses the memory a zone file's records took (a transfer's is handed
// back first), so the load peaks at about 170-180 MiB (file 173-176,
// store 170, AXFR 175-178 measured). 200 MiB leaves
// 25 MiB for GC timing on a shared machine and is still 33 MiB (14%)
// under Knot's peak: a regression that holds the records and the
// snapshot at once, or grows the arena by doubling, goes over it.
const millionCeiling = 200 << 10 // KiB

// A zone of 1,000,000 records, loaded the three ways a box gets one: by
// AXFR from Knot into a fresh node, from the node's store after a
// restart, and from a zone file into a fresh node. Each is imported and
// built in bounded memory: the node's peak RSS stays under
// millionCeiling. The times are reported here and measured properly by
// `make bench` (-million); they depend on the machine, so they are not
// asserted.
func TestMillionRecordZone(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a million-record zone takes tens of seconds per load")
	}
	// Not t.Parallel: the other tests here assert deadlines of a second
	// or less, which these loads' CPU and memory would blur. A sequential
	// test runs alone: the parallel ones wait until every sequential test
	// of the package has finished.
	const origin = "million.test."
	const hosts = 499_998 // an A and an AAAA each, plus SOA, 2 NS, 1 glue A
	var b strings.Builder
	b.Grow(48 << 20)
	fmt.Fprintf(&b, "%s 3600 IN SOA ns1.%s h.%s 1 3600 600 604800 3600\n%s 3600 IN NS ns1.%s\n%s 3600 IN NS ns2.example.\nns1.%s 3600 IN A 192.0.2.1\n",
		origin, origin, origin, origin, origin, origin, origin)
	for i := range hosts {
		fmt.Fprintf(&b, "h%d.%s 3600 IN A 10.%d.%d.%d\nh%d.%s 3600 IN AAAA 2001:db8::%x:%x\n", i, origin, i>>16, (i>>8)&255, i&255, i, origin, i>>16, i&0xffff)
	}
	const records = 2*hosts + 4
	zoneFile := filepath.Join(mkdir(t, "million-zone"), "million.zone")
	writeFile(t, zoneFile, b.String())
	// Knot without a journal (unlike startKnot's): writing a million
	// records into it keeps Knot from serving the zone for minutes.
	knot := refserver.StartKnot(t, knotConfig{Zones: []knotZone{{Origin: origin, Text: b.String()}}})
	b = strings.Builder{}
	last := fmt.Sprintf("h%d.%s", hosts-1, origin)
	want := fmt.Sprintf("NOERROR 10.%d.%d.%d", (hosts-1)>>16, ((hosts-1)>>8)&255, (hosts-1)&255)
	// A node that finds the primary without the zone backs off before it
	// asks again; start it only once Knot serves the zone.
	waitAnswer(t, knot.Addr, last, dns.TypeA, want, 2*time.Minute)

	// peak waits for the last host's answer and checks the node's peak.
	peak := func(n *node, how string, start time.Time) {
		t.Helper()
		waitAnswer(t, n.DNS, last, dns.TypeA, want, 3*time.Minute)
		took := time.Since(start)
		hwm := statusKB(t, n.Pid(), "VmHWM:")
		// Not synchronisation: the node hands memory back right after
		// the swap, and "RSS once served" is the figure a moment later
		// (logged only; the peak is what is asserted).
		time.Sleep(time.Second)
		rss := statusKB(t, n.Pid(), "VmRSS:")
		t.Logf("%d records %s: answered %.1f s after the node started; peak RSS %d MiB, RSS once served %d MiB",
			records, how, took.Seconds(), hwm>>10, rss>>10)
		if hwm > millionCeiling {
			t.Errorf("peak RSS %d MiB for a million-record zone %s; want at most %d MiB", hwm>>10, how, millionCeiling>>10)
		}
	}

	n := newNode(t, "ss-million")
	// Built before the clock starts: the first node of a test binary
	// otherwise counts the go build of shoestring (a cached one takes
	// seconds, one after a change most of a minute) as its load time.
	testenv.Binary(t)
	start := time.Now()
	conf := secondaryConf(origin, knot.Addr, "")
	n.start(t, conf)
	peak(n, "by AXFR from Knot", start)
	z := n.waitZone(t, origin, 10*time.Second, "transfer recorded", func(z api.SecondaryZone) bool { return z.AXFRs == 1 && !z.Refreshing })
	if !strings.Contains(z.LastResult, strconv.Itoa(records)+" records") {
		t.Errorf("transfer result %q, want %d records", z.LastResult, records)
	}

	n.Stop(stopGrace)
	start = time.Now()
	n.start(t, conf)
	peak(n, "from the store after a restart", start)
	n.Stop(stopGrace)

	f := newNode(t, "ss-million-file")
	f.extra = fmt.Sprintf("zones:\n  - origin: %s\n    file: %s\n", origin, zoneFile)
	start = time.Now()
	f.start(t, "")
	peak(f, "from its zone file", start)
}

// statusKB reads a "Key: N kB" line of /proc/PID/status.
func statusKB(t *testing.T, pid int, key string) uint64 {
	t.Helper()
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			v, _ := strconv.ParseUint(strings.Fields(rest)[0], 10, 64)
			return v
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}
