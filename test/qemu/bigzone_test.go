package qemu

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/node"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// The qemu-arm64 boot is also the big zone on a small box (issue 13): the
// guest has 512 MB, as the Pi with 512 MB it stands for, and its second
// boot restarts from a store holding a 1,000,000-record zone besides the
// two small ones (it is not a boot of its own: the zone is put in the
// store between the two boots, so what it adds is the host's import and
// the guest's load of the zone at boot).
//
// Between the boots the harness takes the store file off the data
// partition (debugfs, nothing mounted), has the host's shoestring (the
// same store code as the guest's, built for the host) import the zone
// from a file into it, as `shoestring run` does with a zone the config
// names, and puts the file back. The guest then loads all three zones
// from its store at boot, the path a box takes at every power cycle, and
// must answer names of the big zone, including the last, and its SOA,
// not be OOM-killed, and stay under bigPeakCeiling.

// The zone: the same as TestMillionRecordZone's (test/interop): 499,998
// hosts with an A and an AAAA each, plus SOA, two NS and a glue A.
const (
	bigOrigin  = "million.test."
	bigHosts   = 499_998
	bigRecords = 2*bigHosts + 4
	bigSerial  = 1
)

// bigPeakCeiling is the most the guest's PID 1 may hold resident (VmHWM,
// which the node reports as peak_rss on its status) from power-on until
// it answers the million-record zone from its store: the restart from
// the store on a 512 MB box. On a box the node runs inside PID 1, so this
// counts all of the firmware's memory: the node with its three zones,
// the pages of the store file it has mapped (about 115 MiB, read whole
// at boot; the load drops them from the mapping as it goes), the
// tailnet, BGP and PID 1's own work.
//
// The bar of issue 13 is Knot's peak loading the same file: 233 MiB on
// this machine (test/interop's millionCeiling, 200 MiB, holds the node
// alone on amd64 to it). Measured in this guest (arm64): 172-173 MiB
// peak, 167-170 MiB once serving, with 258-265 MiB of the guest's 467
// MiB still available. 200 MiB leaves 27 MiB for GC timing and the
// tailnet's share and stays 33 MiB under Knot's peak; a load that holds
// the zone's records and its snapshot at once, or builds the snapshot
// while the store's import is still resident, goes over it. An OOM kill
// (the kernel panics: the node is PID 1) fails the test before that.
const bigPeakCeiling = 200 << 20

// dataStore is the store's path on the data partition: PID 1 mounts the
// partition on /perm, and the node's data directory is /perm/shoestring
// (config.DefaultDataDir).
var dataStore = "/shoestring/" + node.StoreFile

// bigZone is the million-record zone added to a disk's store.
type bigZone struct {
	last, lastA string // the last host's name and address
	// Host side: making the zone file, the import by the host's node,
	// writing the store back; wall times, under the test's load.
	gen, build, load, put time.Duration
	loadCPU               time.Duration // the host's node's CPU time
	storeSize             int64
	// Guest side.
	toAnswer time.Duration // QEMU start to the last host answered
}

func bigHost(i int) (name, a, aaaa string) {
	return fmt.Sprintf("h%d.%s", i, bigOrigin), fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), fmt.Sprintf("2001:db8::%x:%x", i>>16, i&0xffff)
}

// canonicalIP is an address as the answer's text has it (2001:db8::0:1
// is 2001:db8::1).
func canonicalIP(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return s
}

// writeBigZone writes the zone file.
func writeBigZone(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "%s 3600 IN SOA ns1.%s h.%s %d 3600 600 604800 3600\n%s 3600 IN NS ns1.%s\n%s 3600 IN NS ns2.example.\nns1.%s 3600 IN A 192.0.2.1\n",
		bigOrigin, bigOrigin, bigOrigin, bigSerial, bigOrigin, bigOrigin, bigOrigin, bigOrigin)
	for i := range bigHosts {
		name, a, aaaa := bigHost(i)
		fmt.Fprintf(w, "%s 3600 IN A %s\n%s 3600 IN AAAA %s\n", name, a, name, aaaa)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// debugfs runs debugfs commands on the data partition's file system
// (path?offset=N). debugfs exits 0 whatever happens; anything on stderr
// after its version line is an error.
func debugfs(fsys string, write bool, cmds ...string) error {
	args := []string{"-f", "-"}
	if write {
		args = append(args, "-w")
	}
	cmd := exec.Command("debugfs", append(args, fsys)...)
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		_, rest, _ := strings.Cut(stderr.String(), "\n")
		if strings.TrimSpace(rest) != "" {
			err = fmt.Errorf("%s", strings.TrimSpace(rest))
		}
	}
	if err != nil {
		return fmt.Errorf("debugfs %q on %s: %w\n%s", cmds, fsys, err, out)
	}
	return nil
}

// addBigZone puts the million-record zone into the store on disk's data
// partition (made by a first boot).
func addBigZone(t *testing.T, disk, dir string) *bigZone {
	t.Helper()
	z := &bigZone{}
	z.last, z.lastA, _ = bigHost(bigHosts - 1)
	im, err := OpenImage(disk)
	if err != nil {
		t.Fatal(err)
	}
	off, _, err := im.Partition(board.PartData)
	im.Close()
	if err != nil {
		t.Fatal(err)
	}
	fsys := fmt.Sprintf("%s?offset=%d", disk, off)

	start := time.Now()
	zoneFile := filepath.Join(dir, "million.zone")
	if err := writeBigZone(zoneFile); err != nil {
		t.Fatal(err)
	}
	z.gen = time.Since(start)

	// The guest's store, with what the first boot put there (the
	// uploaded api.test), into a data directory for the host's node.
	data := filepath.Join(dir, "host-data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(data, node.StoreFile)
	if err := debugfs(fsys, false, "dump -p "+dataStore+" "+db); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("store not taken off the data partition: %v", err)
	}

	// The host's node imports the zone file into it. It also saves its
	// config there as the last good one; the guest replaces that with
	// its own once it runs.
	start = time.Now()
	bin := testenv.Binary(t)
	z.build = time.Since(start)
	start = time.Now()
	ports, err := refserver.Ports(2)
	if err != nil {
		t.Fatal(err)
	}
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	conf := filepath.Join(dir, "host-node.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`node:
  name: big-zone-import
data_dir: %s
dns:
  listen: [%q]
management:
  listen: 127.0.0.1:%d
zones:
  - origin: %s
    file: %s
`, data, dnsAddr, ports[1], bigOrigin, zoneFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := refserver.Run(t, refserver.Command{Name: "shoestring (host, importing the big zone)", Argv: []string{bin, "run", "-config", conf}})
	c := &dns.Client{Timeout: time.Second}
	m := new(dns.Msg).SetQuestion(z.last, dns.TypeA)
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if r, _, err := c.Exchange(m, dnsAddr); err == nil && len(r.Answer) == 1 {
			if a, ok := r.Answer[0].(*dns.A); ok && a.A.String() == z.lastA {
				break
			}
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("the host's node did not answer %s from its import:\n%s", z.last, p.Tail(30))
		}
	}
	z.loadCPU = procCPU(p.Pid())
	if !p.Stop(30 * time.Second) {
		t.Fatalf("the host's node did not stop on SIGTERM:\n%s", p.Tail(30))
	}
	z.load = time.Since(start)
	os.Remove(zoneFile)

	// Back onto the data partition, and the file system checked.
	start = time.Now()
	if fi, err := os.Stat(db); err == nil {
		z.storeSize = fi.Size()
	}
	if err := debugfs(fsys, true, "rm "+dataStore, "write "+db+" "+dataStore); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("e2fsck", "-fn", fsys).CombinedOutput(); err != nil {
		t.Fatalf("data partition after writing the store: e2fsck: %v\n%s", err, out)
	}
	z.put = time.Since(start)
	os.RemoveAll(data)
	return z
}

// consoleOOM are what the guest kernel prints when memory runs out.
var consoleOOM = regexp.MustCompile(`(?i)out of memory|oom-kill|invoked oom-killer`)

// answers waits until the booted guest answers the big zone's last host
// and checks more of it.
func (z *bigZone) answers(ctx context.Context, t *testing.T, bt *boot) {
	t.Helper()
	if err := bt.waitAnswer(ctx, z.last, z.lastA); err != nil {
		if m := consoleOOM.FindString(bt.console.String()); m != "" {
			t.Fatalf("the guest ran out of memory loading a million records (console: %q): %v", m, err)
		}
		t.Fatal(err)
	}
	z.toAnswer = bt.since()
	c := &dns.Client{Timeout: 2 * time.Second}
	ask := func(name string, qt uint16) *dns.Msg {
		m := new(dns.Msg).SetQuestion(name, qt)
		var err error
		for range 3 {
			var r *dns.Msg
			if r, _, err = c.ExchangeContext(ctx, m, bt.dnsAddr); err == nil {
				return r
			}
		}
		t.Errorf("%s %s: %v", name, dns.TypeToString[qt], err)
		return nil
	}
	for _, i := range []int{0, 1, 65_535, 65_536, 250_000, bigHosts - 2, bigHosts - 1} {
		name, a, aaaa := bigHost(i)
		for qt, want := range map[uint16]string{dns.TypeA: a, dns.TypeAAAA: aaaa} {
			if r := ask(name, qt); r != nil && (!r.Authoritative || answer(r) != canonicalIP(want)) {
				t.Errorf("%s %s: aa=%v %v, want %s", name, dns.TypeToString[qt], r.Authoritative, r.Answer, want)
			}
		}
	}
	if r := ask(bigOrigin, dns.TypeSOA); r != nil {
		if len(r.Answer) != 1 || !r.Authoritative {
			t.Errorf("%s SOA: aa=%v %v", bigOrigin, r.Authoritative, r.Answer)
		} else if soa, ok := r.Answer[0].(*dns.SOA); !ok || soa.Serial != bigSerial {
			t.Errorf("%s SOA: %v, want serial %d", bigOrigin, r.Answer[0], bigSerial)
		}
	}
	// One past the last host: the zone ends where it should.
	past, _, _ := bigHost(bigHosts)
	if r := ask(past, dns.TypeA); r != nil && (r.Rcode != dns.RcodeNameError || !r.Authoritative) {
		t.Errorf("%s A: %s aa=%v, want an authoritative NXDOMAIN", past, dns.RcodeToString[r.Rcode], r.Authoritative)
	}
}

// answer is the address a response's one answer holds ("" if it holds
// something else).
func answer(r *dns.Msg) string {
	if len(r.Answer) != 1 {
		return ""
	}
	switch rr := r.Answer[0].(type) {
	case *dns.A:
		return rr.A.String()
	case *dns.AAAA:
		return rr.AAAA.String()
	}
	return ""
}

// memory checks that the guest held the zone without running out of
// memory and under bigPeakCeiling, and logs the figures.
func (z *bigZone) memory(t *testing.T, bt *boot, sys api.SystemInfo) {
	t.Helper()
	st, err := bt.api.Status()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	console := bt.console.String()
	if m := consoleOOM.FindString(console); m != "" {
		t.Errorf("the guest ran out of memory (console: %q)", m)
	}
	// The node's own time from its start to answering (after loading
	// its zones from the store).
	nodeLoad := "not logged"
	if m := regexp.MustCompile(`msg=answering zones=\d+ after=(\S+)`).FindStringSubmatch(console); m != nil {
		nodeLoad = m[1]
	}
	if st.Memory.PeakRSS == 0 {
		t.Errorf("the node reports no peak_rss on its status: %+v", st.Memory)
	} else if st.Memory.PeakRSS > bigPeakCeiling {
		t.Errorf("peak RSS of the guest's PID 1 %d MiB with a million-record zone; want at most %d MiB", st.Memory.PeakRSS>>20, bigPeakCeiling>>20)
	}
	t.Logf("%s: %d records in the store (%.0f MiB file): zone file made in %s, host binary built in %s, imported by the host's node in %s (%s CPU), store put back and checked in %s; "+
		"second boot answered the zone's last name %s after QEMU started (the node: %s from its start to answering its 3 zones); "+
		"guest PID 1 peak RSS %.1f MiB (ceiling %d), RSS %.1f MiB now; guest memory %.0f MiB, %.0f MiB available",
		bt.vm.Board.Name, bigRecords, float64(z.storeSize)/(1<<20),
		z.gen.Round(10*time.Millisecond), z.build.Round(10*time.Millisecond), z.load.Round(10*time.Millisecond), z.loadCPU, z.put.Round(10*time.Millisecond),
		z.toAnswer, nodeLoad,
		float64(st.Memory.PeakRSS)/(1<<20), bigPeakCeiling>>20, float64(st.Memory.RSS)/(1<<20), float64(sys.MemTotal)/(1<<20), float64(sys.MemFree)/(1<<20))
}

// procCPU is the CPU time (user and system) a process has used so far.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) in parentheses:
	// state is field 3, utime and stime 14 and 15, in clock ticks
	// (USER_HZ, 100 on Linux).
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
