// Package tenants tests host mode (`shoestring host`, package tenant)
// end to end: a host in a network namespace with a real BIRD peer, three
// tenants added and removed with `shoestring ctl tenant`, queried through
// the routes BIRD learnt, killed, starved of memory and looked at from
// the kernel's side.
package tenants

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
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
			if !slices.Equal(p.Root, []string{"data", "proc", "shoestring"}) || !p.NoCapabilities || !p.BindDenied || !p.PIDNamespace || p.Processes != 1 || len(p.Missing) > 0 {
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
				if rs[p] != r {
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
			if rs[p] != r {
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
			if rs[p] != r {
				t.Errorf("route %s changed while de hung: %q → %q", p, r, rs[p])
			}
		}
		if st := l.status(de.name); st.PID != pid {
			t.Errorf("hung de was restarted (pid %d → %d): only a dead process is", pid, st.PID)
		}
	})

	t.Run("memory", func(t *testing.T) {
		// A tenant whose zone does not fit its memory limit is killed
		// by the kernel, alone, again and again; the others go on.
		hog := tenantDef{name: "hog", prefix: "100.64.0.0/24", addr: "100.64.0.53", zone: "hog.test", extra: []string{"-memory", "16M"}}
		var zone strings.Builder
		zone.WriteString(hog.zoneText())
		for i := range 300000 {
			fmt.Fprintf(&zone, "h%d IN TXT \"%040d\"\n", i, i)
		}
		zf := filepath.Join(l.dir, "hog.zone")
		if err := os.WriteFile(zf, []byte(zone.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		routes := l.routes()
		l.mustCtl(append([]string{"tenant", "add", hog.name, "-prefix", hog.prefix, "-address", hog.addr, "-zone", hog.zone + "=" + zf}, hog.extra...)...)
		l.eventually(20*time.Second, "hog killed for its memory limit", func() bool {
			st := l.status(hog.name)
			return st.OOMKills > 0 && st.Restarts > 0
		})
		st := l.status(hog.name)
		t.Logf("hog: %d OOM kills, last exit %q", st.OOMKills, st.LastExit)
		if _, ok := l.routes()[hog.prefix]; ok {
			t.Error("hog announced")
		}
		for _, d := range defs {
			if got := l.query(d); got != d.name {
				t.Errorf("%s while hog dies: %q", d.name, got)
			}
			if l.routes()[d.prefix] != routes[d.prefix] {
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
			l.mustCtl("tenant", "remove", d.name)
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
