// Package tenants tests host mode (`shoestring host`, package tenant)
// end to end: a host in a network namespace with a real BIRD peer, three
// tenants added and removed with `shoestring ctl tenant`, queried through
// the routes BIRD learnt, killed, starved of memory and looked at from
// the kernel's side.
package tenants

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/shoestring-dns/shoestring/firmware/tenant"
)

// TestHost is one host's life, in order: three tenants added, answering
// and announced; isolated; one killed and withdrawn alone; one hung and
// withdrawn by its checks alone; one starved of memory and killed alone;
// all removed without a trace.
func TestHost(t *testing.T) {
	l := startLab(t)
	before := l.snapshot()
	if before.bird != "" {
		t.Fatalf("BIRD has routes before any tenant: %s", before.bird)
	}

	t.Run("add", func(t *testing.T) {
		for _, d := range defs {
			start := time.Now()
			l.add(d)
			took := l.eventually(15*time.Second, d.name+" answered through BIRD", func() bool { return l.answered(d) })
			t.Logf("tenant add %s → answered and announced: %s (add call %s)", d.name, time.Since(start).Round(time.Millisecond), (time.Since(start) - took).Round(time.Millisecond))
		}
		for _, d := range defs {
			if got := l.query(d); got != d.name {
				t.Errorf("%s: www.%s TXT = %q", d.name, d.zone, got)
			}
		}
		// The same tenant again changes nothing; another spec under its
		// name is refused.
		st := l.status("de")
		l.add(defs[0])
		if again := l.status("de"); again.PID != st.PID || again.Restarts != st.Restarts {
			t.Errorf("adding de again restarted it: pid %d → %d", st.PID, again.PID)
		}
		if out, err := l.ctl("tenant", "add", "de", "-prefix", "192.0.2.0/24", "-address", "192.0.2.54"); err == nil || !strings.Contains(out, "409") {
			t.Errorf("de with another address: %v %s", err, out)
		}
		if out, err := l.ctl("tenant", "add", "evil", "-prefix", "192.0.2.0/25", "-address", "192.0.2.1"); err == nil || !strings.Contains(out, "overlaps") {
			t.Errorf("a prefix overlapping de's: %v %s", err, out)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("isolation", func(t *testing.T) {
		uids := map[int]string{}
		for _, d := range defs {
			st := l.status(d.name)
			p := st.Protections
			if p == nil {
				t.Fatalf("%s reported no protections", d.name)
			}
			// From inside, as the tenant reported itself.
			missing := p.Missing
			if !kernelHasLandlock() {
				// Reported, and the tenant runs without it.
				t.Logf("this kernel has no Landlock: %s reports %q", d.name, p.Landlock)
				missing = slices.DeleteFunc(slices.Clone(missing), func(m string) bool { return strings.HasPrefix(m, "landlock") })
			} else if !strings.HasPrefix(p.Landlock, "enforced") || !p.WriteOutsideDenied {
				// Nothing writable outside its data, not even its own
				// /proc/self/comm, which its uid may write.
				t.Errorf("%s: landlock %q, write outside its data denied %v", d.name, p.Landlock, p.WriteOutsideDenied)
			}
			if !slices.Equal(p.Root, []string{"data", "proc", "shoestring"}) || !p.NoCapabilities || !p.BindDenied || !p.PIDNamespace || p.Processes != 1 || len(missing) > 0 {
				t.Errorf("%s inside: %+v", d.name, *p)
			}
			if other, ok := uids[st.UID]; ok || st.UID < 1000 {
				t.Errorf("%s has uid %d (also %s's?)", d.name, st.UID, other)
			}
			uids[st.UID] = d.name
			// From outside, as the kernel sees the process.
			ps := procStatus(t, st.PID)
			if ps["CapEff"] != "0000000000000000" || ps["CapPrm"] != "0000000000000000" || ps["NoNewPrivs"] != "1" || ps["Seccomp"] != "2" {
				t.Errorf("%s: kernel says CapEff %s CapPrm %s NoNewPrivs %s Seccomp %s", d.name, ps["CapEff"], ps["CapPrm"], ps["NoNewPrivs"], ps["Seccomp"])
			}
			if !strings.HasPrefix(ps["Uid"], strconv.Itoa(st.UID)+"\t") {
				t.Errorf("%s runs as uid %s, want %d", d.name, ps["Uid"], st.UID)
			}
			if nspid := strings.Fields(ps["NSpid"]); len(nspid) != 2 || nspid[1] != "1" {
				t.Errorf("%s: NSpid %q: not process 1 of its own PID namespace", d.name, ps["NSpid"])
			}
			root, err := os.ReadDir(fmt.Sprintf("/proc/%d/root", st.PID))
			if err != nil {
				t.Fatal(err)
			}
			if got := sortedNames(root); !slices.Equal(got, []string{"data", "proc", "shoestring"}) {
				t.Errorf("%s's root holds %v", d.name, got)
			}
			// Its network stack: nic's own (configured), the others the
			// host's.
			l.checkNetwork(t, st, slices.Contains(d.extra, "-netns"))
			if cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", st.PID)); !strings.Contains(string(cg), l.cgroup+"/"+d.name) {
				t.Errorf("%s not in its cgroup:\n%s", d.name, cg)
			}
		}
		// Another tenant's store: not in a tenant's root at all (above),
		// and on the host closed to every other tenant's uid.
		de, nic := l.status("de"), l.status("nic")
		store := filepath.Join(l.dir, "tenants", "nic", "data", "shoestring.db")
		if _, err := os.Stat(store); err != nil {
			t.Fatalf("nic's store: %v", err)
		}
		cat := exec.Command("cat", store)
		cat.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(de.UID), Gid: uint32(de.UID)}}
		if out, err := cat.CombinedOutput(); err == nil || !strings.Contains(string(out), "denied") {
			t.Errorf("de's uid read nic's store: %v %.80q", err, out)
		}
		_ = nic
		// The memory limit is the cgroup's (enum: 64 MiB).
		enum := l.status("enum")
		var memLimit string
		for _, p := range enum.Cgroup {
			p = l.outside + p
			if b, err := os.ReadFile(filepath.Join(p, "memory.limit_in_bytes")); err == nil {
				memLimit = strings.TrimSpace(string(b))
			}
			if b, err := os.ReadFile(filepath.Join(p, "memory.max")); err == nil {
				memLimit = strings.TrimSpace(string(b))
			}
		}
		if memLimit != strconv.Itoa(64<<20) {
			t.Errorf("enum's memory limit %q, want 64 MiB", memLimit)
		}

		// The host keeps its own threads on tenants.host_cpuset (1);
		// enum is pinned to 0, de may use every core the host had.
		var all unix.CPUSet
		if err := unix.SchedGetaffinity(0, &all); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			who  string
			pid  int
			want string
		}{{"host", l.host.Process.Pid, "1"}, {"enum", enum.PID, "0"}, {"de", l.status("de").PID, fmt.Sprintf("0-%d", all.Count()-1)}} {
			for tid, cpus := range threadCPUs(t, c.pid) {
				if cpus != c.want {
					t.Errorf("%s's thread %s runs on cores %s, want %s", c.who, tid, cpus, c.want)
				}
			}
		}
	})

	t.Run("rrl", func(t *testing.T) {
		// Each tenant has its own RRL: a burst at a tenant with
		// -rrl 5 (slip 2) is limited, the same burst at de (no RRL) is
		// answered in full. The limited tenant is removed again (its
		// clients stay in debt for the RRL window).
		rl := tenantDef{name: "rl", prefix: "198.18.53.0/24", addr: "198.18.53.53", zone: "rl.test", extra: []string{"-rrl", "5"}}
		l.add(rl)
		defer l.mustCtl("tenant", "remove", rl.name)
		l.eventually(15*time.Second, "rl answering", func() bool { return l.status(rl.name).PID != 0 && l.query(rl) == rl.name })
		time.Sleep(2 * time.Second) // the check's queries are not the burst's
		const burst = 200
		for _, c := range []struct {
			d       tenantDef
			limited bool
		}{{rl, true}, {defs[0], false}} {
			full, tc := udpBurst(t, c.d, burst)
			t.Logf("%s: %d queries at once: %d full answers, %d TC, %d dropped", c.d.name, burst, full, tc, burst-full-tc)
			if !c.limited {
				if full != burst {
					t.Errorf("%s has no RRL but answered %d of %d in full", c.d.name, full, burst)
				}
				continue
			}
			// The burst takes well under a second: at most the first
			// second's 5 and the next second's 5 in full.
			if full > 10 || tc == 0 || full+tc == burst {
				t.Errorf("%s (rrl 5/s, slip 2): %d full, %d TC of %d; want at most 10 full, some TC and some dropped", c.d.name, full, tc, burst)
			}
		}
	})

	t.Run("secondary", func(t *testing.T) { testSecondary(t, l) })

	t.Run("kill", func(t *testing.T) {
		nic := defs[1]
		others := l.routes()
		delete(others, nic.prefix)
		if len(others) != 2 {
			t.Fatalf("routes before: %v", l.routes())
		}
		pid := l.status(nic.name).PID
		start := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var withdrawn time.Duration
		for {
			rs := l.routes()
			for p, r := range others {
				if !sameRoute(rs[p], r) {
					t.Fatalf("route %s changed when nic died: %q → %q", p, r, rs[p])
				}
			}
			if _, ok := rs[nic.prefix]; !ok {
				withdrawn = time.Since(start)
				break
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("nic's prefix still at BIRD %s after kill -9", time.Since(start))
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("kill -9 → withdrawn at BIRD: %s", withdrawn.Round(time.Millisecond))
		if withdrawn > time.Second {
			t.Errorf("withdrawn after %s, want within 1s", withdrawn)
		}
		back := l.eventually(15*time.Second, "nic back after rise", func() bool { return l.answered(nic) })
		t.Logf("kill -9 → announced and answering again: %s", (withdrawn + back).Round(time.Millisecond))
		rs := l.routes()
		for p, r := range others {
			if !sameRoute(rs[p], r) {
				t.Errorf("route %s changed: %q → %q", p, r, rs[p])
			}
		}
		if st := l.status(nic.name); st.Restarts != 1 || !strings.Contains(st.LastExit, "killed") {
			t.Errorf("nic after kill: restarts %d, last exit %q", st.Restarts, st.LastExit)
		}
	})

	t.Run("hung", func(t *testing.T) {
		// A stopped process is alive: it is withdrawn by its failing
		// checks (fall rounds), the others untouched, and comes back
		// after rise once it runs again.
		de := defs[0]
		others := l.routes()
		delete(others, de.prefix)
		pid := l.status(de.name).PID
		start := time.Now()
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer syscall.Kill(pid, syscall.SIGCONT)
		withdrawn := l.eventually(5*time.Second, "hung de withdrawn", func() bool {
			_, ok := l.routes()[de.prefix]
			return !ok
		})
		t.Logf("SIGSTOP → withdrawn at BIRD: %s", withdrawn.Round(time.Millisecond))
		syscall.Kill(pid, syscall.SIGCONT)
		l.eventually(15*time.Second, "de back after SIGCONT", func() bool { return l.answered(de) })
		t.Logf("SIGSTOP → SIGCONT → announced again: %s", time.Since(start).Round(time.Millisecond))
		rs := l.routes()
		for p, r := range others {
			if !sameRoute(rs[p], r) {
				t.Errorf("route %s changed while de hung: %q → %q", p, r, rs[p])
			}
		}
		if st := l.status(de.name); st.PID != pid {
			t.Errorf("hung de was restarted (pid %d → %d): only a dead process is", pid, st.PID)
		}
	})

	t.Run("memory", func(t *testing.T) {
		// A tenant whose zone does not fit its memory limit is killed
		// by the kernel, alone, again and again; the others go on, and
		// enum's answers keep their latency.
		//
		// A steady stream of queries to enum runs from before hog is
		// added until it has been killed twice. Each query counts as
		// "during" when hog's process was alive when it was sent (or had
		// died less than 200 ms before: the kernel's reclaim), as
		// "before" when it was sent before hog was added or while hog
		// was waiting to be started again. The two sets interleave (hog
		// restarts after 1 s, then 2 s), so the machine's own drift
		// falls on both alike. None of enum's queries may be lost, and
		// its p99 during must be within 10% of its p99 before (in 99 of
		// 100 bootstrap resamples of both sets, p99Excess) — checked
		// when the machine is quiet enough for a p99 to say anything
		// about enum: when the p99 before is under 2 ms (p50 is about
		// 50 µs, p99 0.3-0.5 ms). On a box shared by many jobs on two
		// cores (where this was written) scheduling stalls of 10-50 ms
		// land on a few queries of either set at random and decide
		// both p99s; then the figures are logged only. enum is pinned
		// to core 0, hog to core 1, and the host to core 1
		// (tenants.host_cpuset, lab_test.go).
		hog := tenantDef{name: "hog", prefix: "100.64.0.0/24", addr: "100.64.0.53", zone: "hog.test", extra: []string{"-memory", "16M", "-cpuset", "1"}}
		var zone strings.Builder
		zone.WriteString(hog.zoneText())
		for i := range 300000 {
			fmt.Fprintf(&zone, "h%d IN TXT \"%040d\"\n", i, i)
		}
		zf := filepath.Join(l.dir, "hog.zone")
		if err := os.WriteFile(zf, []byte(zone.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		// What earlier tests left in the page cache (test/qemu's disk
		// images: gigabytes) is written back now, not by kernel threads
		// on enum's core in the middle of one set or the other.
		unix.Sync()
		routes := l.routes()
		enum := defs[2]
		// The client measuring enum shares enum's core, not hog's: a
		// test process whose threads wait behind hog's CPU on core 1
		// would time its own scheduling, not enum's answers.
		defer pinProcess(t, 0)()
		s := startStream(t, enum, 1000)
		defer s.stop()
		// hog's life as the host reports it, every 50 ms; the same
		// polling runs before it exists (a 404), so that both sets cost
		// the host the same.
		type phase struct {
			at    time.Time
			alive bool
		}
		var phases []phase
		started := time.Now()
		for time.Since(started) < 4*time.Second {
			l.apiStatus(hog.name)
			time.Sleep(50 * time.Millisecond)
		}
		added := time.Now()
		// The ctl process adding hog reads and sends its 15 MB zone and
		// waits for it (4.5 s, 0.65 s of CPU): it runs on hog's core, not
		// on enum's, where it would inherit this test's pinning and take
		// as much of enum's core as enum itself used (perf sched, -C 0).
		var out string
		var err error
		if perr := onCPU(1, func() {
			out, err = l.ctl(append([]string{"tenant", "add", hog.name, "-prefix", hog.prefix, "-address", hog.addr, "-zone", hog.zone + "=" + zf}, hog.extra...)...)
		}); perr != nil {
			t.Fatal(perr)
		}
		if err != nil {
			t.Fatalf("ctl tenant add hog: %v\n%s", err, out)
		}
		// Until hog was killed twice and enum's queries "during" (hog
		// alive, or killed at most reclaim ago) are enough for a p99:
		// on a quiet machine one life of hog lasts ~0.2 s, so this may
		// take more kills (its restarts back off 1, 2, 4 s...).
		const reclaim = 200 * time.Millisecond
		var duringTime time.Duration
		for {
			st := l.apiStatus(hog.name)
			now := time.Now()
			if n := len(phases); n > 0 && phases[n-1].alive {
				duringTime += now.Sub(phases[n-1].at)
				if st.PID == 0 {
					duringTime += reclaim
				}
			}
			phases = append(phases, phase{now, st.PID != 0})
			if st.OOMKills >= 2 && st.PID == 0 && duringTime >= time.Second {
				break
			}
			if time.Since(added) > 40*time.Second {
				t.Fatalf("hog: %d OOM kills after %s", st.OOMKills, time.Since(added))
			}
			time.Sleep(50 * time.Millisecond)
		}
		ended := time.Now()
		s.stop()
		st := l.status(hog.name)
		t.Logf("hog: %d OOM kills, %d restarts, last exit %q", st.OOMKills, st.Restarts, st.LastExit)
		// Classify enum's queries.
		var lastAlive time.Time
		alive := func(at time.Time) bool {
			// The first poll at or after at tells; a death is seen up
			// to 50 ms late, so a query is "during" a little longer.
			for _, p := range phases {
				if p.alive {
					lastAlive = p.at
				}
				if !p.at.Before(at) {
					return p.alive || at.Sub(lastAlive) < reclaim
				}
			}
			return false
		}
		before, during := s.split(started, ended, func(at time.Time) bool { return at.After(added) && alive(at) })
		excess, lo, hi := p99Excess(before.rtts, during.rtts, 1.1)
		t.Logf("enum's answers (%.0f/s of %d/s asked): hog absent or waiting p50 %s p99 %s (%d queries, %d lost); hog alive or just killed p50 %s p99 %s (%d queries, %d lost; p99 %s-%s in 98%% of resamples; over 1.1x the p99 before by at least %s in 99%%)",
			float64(before.n+during.n)/ended.Sub(started).Seconds(), s.rate, before.p50, before.p99, before.n, before.lost, during.p50, during.p99, during.n, during.lost, lo, hi, excess)
		if during.lost > 0 {
			t.Errorf("%d of enum's queries lost while hog was killed", during.lost)
		}
		if during.n < 300 || before.n < 400 {
			t.Errorf("too few samples: %d before, %d during", before.n, during.n)
		}
		switch {
		case before.p99 >= quietP99:
			t.Logf("p99 not compared: enum's p99 before is %s (at least %s): the machine's own stalls decide it", before.p99, quietP99)
		case excess > 0:
			// The host's own work for hog (its zone copy, its restarts,
			// its log lines) runs on tenants.host_cpuset, hog's core:
			// without it enum's p99 was 0.3-8 ms worse while hog was
			// killed, from the host's threads on enum's core. What this
			// check can tell from chance is a p99 about twice as bad:
			// the p99 of the ~1,700 queries "during" is their 17
			// slowest, which spread from 0.8x to 1.8x of it over the
			// resamples here (a 10% move needs some 100,000 samples).
			// Without host_cpuset, 3 runs here gave +33%, +7% and -5%,
			// and passed; what keeps the host off enum's core is
			// asserted directly, thread by thread, in isolation.
			t.Errorf("enum's p99 while hog was alive and killed %s, more than 10%% over its p99 otherwise (%s) in 99 of 100 bootstrap resamples (by %s or more)", during.p99, before.p99, excess)
		}
		if _, ok := l.routes()[hog.prefix]; ok {
			t.Error("hog announced")
		}
		for _, d := range defs {
			if got := l.query(d); got != d.name {
				t.Errorf("%s while hog dies: %q", d.name, got)
			}
			if !sameRoute(l.routes()[d.prefix], routes[d.prefix]) {
				t.Errorf("%s's route changed while hog died", d.name)
			}
			if s := l.status(d.name); s.OOMKills != 0 || s.State != "running" {
				t.Errorf("%s: %d OOM kills, %s", d.name, s.OOMKills, s.State)
			}
		}
		l.mustCtl("tenant", "remove", hog.name)
	})

	t.Run("remove", func(t *testing.T) {
		// enum is removed while de and nic are queried: none of their
		// queries may be lost.
		stop := make(chan struct{})
		lost := make(chan string, 1)
		go func() {
			var fails []string
			for i := 0; ; i++ {
				select {
				case <-stop:
					lost <- strings.Join(fails, ", ")
					return
				default:
				}
				d := defs[i%2]
				if got := l.query(d); got != d.name {
					fails = append(fails, fmt.Sprintf("%s=%q", d.name, got))
				}
			}
		}()
		for _, d := range slices.Backward(defs) {
			start := time.Now()
			if d.name == "enum" {
				drainedRemove(t, l, d)
			} else {
				l.mustCtl("tenant", "remove", d.name)
			}
			t.Logf("tenant remove %s → clean: %s", d.name, time.Since(start).Round(time.Millisecond))
			if d.name == "enum" {
				close(stop)
				if f := <-lost; f != "" {
					t.Errorf("queries to other tenants lost while enum was removed: %s", f)
				}
			}
		}
		l.eventually(5*time.Second, "BIRD without routes", func() bool { return len(l.routes()) == 0 })
		diffSnapshots(t, before, l.snapshot())
		ents, _ := os.ReadDir(filepath.Join(l.dir, "tenants"))
		if got := sortedNames(ents); !slices.Equal(got, []string{"tenants.json"}) {
			t.Errorf("tenants dir after remove: %v", got)
		}
		if out := l.mustCtl("tenants"); strings.Contains(out, "running") {
			t.Errorf("tenants after remove:\n%s", out)
		}
	})
}

// drainedRemove removes d while watching BIRD: its prefix must carry
// GRACEFUL_SHUTDOWN (65535:0, RFC 8326) before it is withdrawn, for about
// health.drain.wait (1 s here), and no other tenant's route may change at
// all (same attributes, same time learnt).
func drainedRemove(t *testing.T, l *lab, d tenantDef) {
	t.Helper()
	before := l.routeDetails()
	if strings.Contains(before[d.prefix], "65535,0") {
		t.Fatalf("%s carries GRACEFUL_SHUTDOWN before its remove:\n%s", d.name, before[d.prefix])
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		out, err := l.ctl("tenant", "remove", d.name)
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		done <- err
	}()
	var drained, withdrawn time.Duration
	for withdrawn == 0 {
		rs := l.routeDetails()
		for p, r := range before {
			if p != d.prefix && !sameRoute(rs[p], r) {
				t.Fatalf("route %s changed while %s was removed:\nbefore:\n%s\nnow:\n%s", p, d.name, r, rs[p])
			}
		}
		switch r, ok := rs[d.prefix]; {
		case !ok:
			withdrawn = time.Since(start)
		case drained == 0 && strings.Contains(r, "BGP.community") && strings.Contains(r, "(65535,0)"):
			drained = time.Since(start)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s still at BIRD %s into its remove:\n%s", d.name, time.Since(start), rs[d.prefix])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatalf("tenant remove %s: %v", d.name, err)
	}
	t.Logf("tenant remove %s: GRACEFUL_SHUTDOWN at BIRD after %s, withdrawn after %s", d.name, drained.Round(time.Millisecond), withdrawn.Round(time.Millisecond))
	if drained == 0 {
		t.Errorf("%s was withdrawn without GRACEFUL_SHUTDOWN first", d.name)
	} else if withdrawn-drained < 500*time.Millisecond {
		t.Errorf("%s withdrawn %s after GRACEFUL_SHUTDOWN; the drain wait is 1s", d.name, withdrawn-drained)
	}
}

// stream queries a tenant's www TXT over UDP at a steady rate from this
// (the host's) namespace, one query at a time, and keeps each round trip
// with the time it was sent; a query unanswered within a second is lost.
type stream struct {
	rate int
	quit chan struct{}
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	sent []time.Time
	rtt  []time.Duration // -1: lost
}

func startStream(t *testing.T, d tenantDef, rate int) *stream {
	t.Helper()
	c, err := net.Dial("udp", net.JoinHostPort(d.addr, "53"))
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{rate: rate, quit: make(chan struct{}), done: make(chan struct{})}
	m := new(dns.Msg)
	m.SetQuestion("www."+d.zone+".", dns.TypeTXT)
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		defer c.Close()
		buf := make([]byte, 2048)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for id := uint16(1); ; id++ {
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
			q[0], q[1] = byte(id>>8), byte(id)
			start := time.Now()
			rtt := time.Duration(-1)
			if _, err := c.Write(q); err == nil {
				c.SetReadDeadline(start.Add(time.Second))
				for {
					n, err := c.Read(buf)
					if err != nil {
						break
					}
					if n > 12 && buf[0] == q[0] && buf[1] == q[1] {
						rtt = time.Since(start)
						break
					}
				}
			}
			s.mu.Lock()
			s.sent, s.rtt = append(s.sent, start), append(s.rtt, rtt)
			s.mu.Unlock()
		}
	}()
	return s
}

// pinProcess moves every thread of the test process onto cpu (threads
// made later inherit it) and returns what puts them back on every core.
func pinProcess(t *testing.T, cpu int) func() {
	t.Helper()
	var one, all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	one.Set(cpu)
	if err := tenant.SetProcessAffinity(&one); err != nil {
		t.Fatalf("pinning the test process to cpu %d: %v", cpu, err)
	}
	return func() {
		if err := tenant.SetProcessAffinity(&all); err != nil {
			t.Errorf("unpinning the test process: %v", err)
		}
	}
}

func (s *stream) stop() {
	s.once.Do(func() { close(s.quit) })
	<-s.done
}

// onCPU runs f on a thread pinned to cpu while f runs: processes f starts
// inherit that thread's affinity, not the rest of the test's.
func onCPU(cpu int, f func()) error {
	errc := make(chan error, 1)
	go func() {
		// The thread gets its cores back and returns to the runtime
		// rather than end with the goroutine: a daemon this test
		// started earlier from the same thread with Pdeathsig (BIRD)
		// would be killed with it (see nslab.InNS).
		runtime.LockOSThread()
		var own, one unix.CPUSet
		if err := unix.SchedGetaffinity(0, &own); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		one.Set(cpu)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("pinning a thread to cpu %d: %w", cpu, err)
			return
		}
		f()
		if err := unix.SchedSetaffinity(0, &own); err != nil {
			errc <- fmt.Errorf("unpinning a thread from cpu %d: %w", cpu, err)
			return // the thread stays locked and ends with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	return <-errc
}

// threadCPUs returns the cores each thread of a process may run on, by
// thread id.
func threadCPUs(t *testing.T, pid int) map[string]string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	cpus := map[string]string{}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "status"))
		if err != nil {
			continue // it ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				cpus[task.Name()] = strings.TrimSpace(v)
			}
		}
	}
	if len(cpus) == 0 {
		t.Fatalf("no threads in %s", dir)
	}
	return cpus
}

// latency sums up the round trips of a window.
type latency struct {
	n, lost  int
	p50, p99 time.Duration
	rtts     []time.Duration // in the order sent
}

// p99Excess bounds, from below, by how much the p99 of during exceeds
// factor times the p99 of before: the 1st percentile of that excess
// over 2,000 bootstrap resamples of both sets (drawn with replacement,
// from a fixed seed, so a run's figures can be recomputed). It is above
// zero only when during's p99 is over the bar in 99 resamples of 100:
// a p99 of a few thousand queries is decided by its few dozen slowest,
// which one scheduling stall of this shared machine moves, so a bar on
// it is a statement about the queries' distribution, not about one
// draw. It also returns the 1st and 99th percentiles of during's p99
// over the resamples, for the log.
func p99Excess(before, during []time.Duration, factor float64) (excess, lo, hi time.Duration) {
	const rounds = 2000
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func(from, into []time.Duration) time.Duration {
		for i := range into {
			into[i] = from[rng.IntN(len(from))]
		}
		return percentile(into, 0.99)
	}
	b, d := make([]time.Duration, len(before)), make([]time.Duration, len(during))
	excesses, p99s := make([]time.Duration, rounds), make([]time.Duration, rounds)
	for i := range rounds {
		p99s[i] = draw(during, d)
		excesses[i] = p99s[i] - time.Duration(factor*float64(draw(before, b)))
	}
	return percentile(excesses, 0.01), percentile(p99s, 0.01), percentile(p99s, 0.99)
}

// quietP99 is the p99 below which the machine is quiet enough to compare
// p99s (see the memory test).
const quietP99 = 2 * time.Millisecond

// split sums up the round trips of the queries sent from a to b in two
// sets: those during says are not, and those it says are.
func (s *stream) split(a, b time.Time, during func(time.Time) bool) (out, in latency) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rtts [2][]time.Duration
	ls := [2]*latency{&out, &in}
	for i, t := range s.sent {
		if t.Before(a) || t.After(b) {
			continue
		}
		k := 0
		if during(t) {
			k = 1
		}
		ls[k].n++
		rtt := s.rtt[i]
		if rtt < 0 {
			ls[k].lost++
			rtt = time.Second
		}
		rtts[k] = append(rtts[k], rtt)
	}
	for k, r := range rtts {
		if len(r) == 0 {
			continue
		}
		ls[k].rtts = slices.Clone(r)
		ls[k].p50, ls[k].p99 = percentile(r, 0.50), percentile(r, 0.99)
	}
	return out, in
}

// percentile sorts r and returns its p-th percentile.
func percentile(r []time.Duration, p float64) time.Duration {
	slices.Sort(r)
	return r[max(0, int(math.Ceil(p*float64(len(r))))-1)].Round(time.Microsecond)
}

// udpBurst sends n queries for the tenant's www TXT at once from this
// (the host's) namespace and counts the full answers and the TC ones
// that come back within a second of the last.
func udpBurst(t *testing.T, d tenantDef, n int) (full, tc int) {
	t.Helper()
	c, err := net.Dial("udp", net.JoinHostPort(d.addr, "53"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < n; i++ {
		m := new(dns.Msg)
		m.SetQuestion("www."+d.zone+".", dns.TypeTXT)
		m.Id = uint16(i + 1)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(time.Second))
		k, err := c.Read(buf)
		if err != nil {
			return full, tc
		}
		r := new(dns.Msg)
		if r.Unpack(buf[:k]) != nil {
			continue
		}
		switch {
		case r.Truncated:
			tc++
		case len(r.Answer) > 0:
			full++
		}
	}
}

// kernelHasLandlock asks the kernel for its Landlock ABI version.
func kernelHasLandlock() bool {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	return e == 0 && v >= 1
}
