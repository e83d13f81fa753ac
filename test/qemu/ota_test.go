package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/ota/bundle"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestOTA updates one booted qemu-amd64 box (the harness plays the
// Pi-style tryboot firmware) through the management API over the
// tailnet, three times on the same disk, each update a reboot the node
// makes itself (QEMU runs with -no-reboot, so a reboot ends QEMU and the
// test boots the disk again, the harness choosing the slot):
//
//  1. a good update (v1.0.0 into slot B): the node drains (BIRD sees
//     GRACEFUL_SHUTDOWN, then the withdrawal, before QEMU exits), reboots once
//     into B, soaks ota.soak (10 s here), checks every health part, its
//     zones' serials and every zone's SOA from itself, and commits B; a
//     plain reboot stays on B;
//  2. a bundle whose /init exits at once (v1.1.0 into slot A): the kernel
//     panics, panic=10 resets the box, the one-shot try is spent and the
//     harness boots committed B, whose PID 1 marks A bad with the reason;
//     the same bundle offered again is refused;
//  3. a firmware that boots but fails its soak (v1.2.0, the good image,
//     into slot A, booted while its BGP peer cannot reach it: the session
//     never comes up): at the end of the soak the node marks A bad with
//     the failing check and reboots into B by itself; offered again, it
//     is refused;
//  4. the watchdog: the box rebooted with a config on which its DNS
//     server never answers its own liveness queries (it listens only on
//     an address nothing routes to it) and no boot grace is reset by
//     the i6300esb within its 10 s timeout.
//
// Between 1 and 2 QEMU is killed halfway through writing slot A (a
// power cut): the box boots B, nothing armed, slot A's record unchanged,
// and A takes the next update.
//
// It measures the time from the upload to the commit, and from each bad
// image's start to the old slot answering DNS again.
//
// SHOESTRING_OTA_BOARD=atom64 runs it on the atom64 image instead: real
// GRUB under SeaBIOS, grubenv's try_slot (slower; not in make test).
func TestOTA(t *testing.T) {
	name := "qemu-amd64"
	if v := os.Getenv("SHOESTRING_OTA_BOARD"); v != "" {
		name = v
	}
	b, err := board.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	requireTools(t, b)
	testenv.RequireTool(t, "go")
	tn := startTailnet(t)
	res := buildImage(t, b, filepath.Join(testenv.RepoRoot(), "out", "test"))
	dir := t.TempDir()

	// A signing key of the test's own, its public half trusted by the
	// node's config. The versions are newer than the image's own
	// ("qemu-test", a development version), which every boot reports,
	// whichever slot it came from: the slot tells the firmware apart.
	priv, pub, err := bundle.GenerateKey("qemu-test")
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := bundle.ParseSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := os.ReadFile(res.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	initrdName := filepath.Base(res.Initrd)
	good := makeBundle(t, dir, b.Name, "v1.0.0", signer, res.Kernel, initrdName, initrd)
	panicky := makeBundle(t, dir, b.Name, "v1.1.0", signer, res.Kernel, initrdName, exitingInitramfs(t, dir))
	soakFails := makeBundle(t, dir, b.Name, "v1.2.0", signer, res.Kernel, initrdName, initrd)

	disk := filepath.Join(dir, "disk.img")
	if err := CopyDisk(res.Disk, disk, 1<<30); err != nil {
		t.Fatal(err)
	}
	im, err := OpenImage(disk)
	if err != nil {
		t.Fatal(err)
	}
	name = "test-ota-" + b.Name
	for file, text := range map[string]string{
		"node.yaml":         nodeYAML(name, ntpServer(t), tn.guestControlURL) + "ota:\n  keys: [\"" + pub + "\"]\n  soak: 10s\n",
		"example.test.zone": zoneText,
		"tailnet.authkey":   tailnetKey + "\n",
	} {
		if err := im.WriteFile(board.PartBoot, "provision/"+file, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	im.Close()

	ports, err := refserver.Ports(2)
	if err != nil {
		t.Fatal(err)
	}
	dnsPort, bgpPort := ports[0], ports[1]
	fwd := []Forward{{"udp", dnsPort, 53, ""}, {"tcp", dnsPort, 53, ""}, {"tcp", bgpPort, 179, ""}}
	// The BGP peer cannot reach the node: no forward to its port 179.
	fwdNoBGP := fwd[:2]
	br := startBIRD(t, bgpPort)
	c := tn.apiClient(name)
	n := 0
	bootDisk := func(f []Forward) *boot {
		n++
		bt := startBoot(t, b, disk, filepath.Join(dir, fmt.Sprintf("console-%d.log", n)), f)
		bt.api, bt.dnsAddr = c, fmt.Sprintf("127.0.0.1:%d", dnsPort)
		return bt
	}
	// up waits until a boot answers DNS and its API, and BGP when
	// reachable.
	up := func(bt *boot, bgp bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		if err := bt.waitAnswer(ctx, "www.example.test.", "192.0.2.80"); err != nil {
			t.Fatalf("boot of slot %s: %v", bt.vm.Slot.Slot, err)
		}
		if bgp {
			if err := bt.waitBGP(ctx, br); err != nil {
				t.Fatal(err)
			}
		}
		if err := waitAPI(ctx, c, bt.vm.Done()); err != nil {
			t.Fatalf("boot of slot %s: management API over the tailnet: %v", bt.vm.Slot.Slot, err)
		}
	}
	// booted is the slot a boot came from: the harness's choice, or with
	// a real boot loader what the node says (once it is up).
	booted := func(bt *boot) string {
		t.Helper()
		if !b.QEMU.Firmware {
			return bt.vm.Slot.Slot
		}
		sys, err := c.System()
		if err != nil {
			t.Fatalf("system: %v", err)
		}
		return sys.Slot
	}
	// rebooted waits for the node to reboot (QEMU exits) by itself.
	rebooted := func(bt *boot, within time.Duration) {
		t.Helper()
		if err := bt.vm.Wait(within); err != nil {
			t.Fatalf("slot %s did not reboot: %v", bt.vm.Slot.Slot, err)
		}
	}
	slots := func() api.SlotsStatus {
		t.Helper()
		s, err := c.Slots()
		if err != nil {
			t.Fatalf("slots: %v", err)
		}
		return s
	}
	upload := func(file string) (api.UpdateStatus, error) {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return c.Update(f, false)
	}
	refused := func(file, want string) {
		t.Helper()
		_, err := upload(file)
		var ae *api.APIError
		if !errors.As(err, &ae) || ae.Code != http.StatusUnprocessableEntity || !strings.Contains(ae.Body.Error, want) {
			t.Errorf("%s offered again: %v, want 422 naming %q", filepath.Base(file), err, want)
		}
	}

	// 1. The good update.
	bt := bootDisk(fwd)
	up(bt, true)
	if got := booted(bt); got != "A" {
		t.Fatalf("fresh image: booted slot %s", got)
	}
	if s := slots(); s.Method != string(b.Boot.Method) || s.Booted != "A" || s.Committed != "A" || s.Trial != "" {
		t.Errorf("slots before the update: %+v", s)
	}
	drain := watchDrain(br, bt.vm.Done())
	start := time.Now()
	u, err := upload(good)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	installed := time.Since(start)
	if u.State != "rebooting" || u.Slot != "B" || u.Version != "v1.0.0" || u.Last == nil || u.Last.Result != "installed" || u.Last.Serials["example.test."] != 2026010101 {
		t.Errorf("update: %+v", u)
	}
	rebooted(bt, 2*time.Minute)
	for _, want := range []string{"draining and rebooting into the new slot once", "drained", "data partition unmounted cleanly"} {
		if !strings.Contains(bt.console.String(), want) {
			t.Errorf("console of the update's reboot lacks %q", want)
		}
	}
	// BIRD saw the drain before the box went down: the route with
	// GRACEFUL_SHUTDOWN, then withdrawn, while the session was up.
	if d := <-drain; d.gshut.IsZero() || d.withdrawn.IsZero() || !d.gshut.Before(d.withdrawn) || !d.withdrawn.Before(d.exit) {
		t.Errorf("drain at BIRD: GRACEFUL_SHUTDOWN at %v, withdrawn at %v, QEMU exited at %v", d.gshut, d.withdrawn, d.exit)
	}
	bt = bootDisk(fwd)
	up(bt, true)
	if got := booted(bt); got != "B" {
		t.Fatalf("after the update the box booted slot %s, want B", got)
	}
	s := slots()
	for deadline := time.Now().Add(2 * time.Minute); s.Committed != "B" && time.Now().Before(deadline); s = slots() {
		time.Sleep(time.Second)
	}
	toCommit := time.Since(start)
	if s.Committed != "B" || s.Booted != "B" || s.Trial != "" || s.Slots[1].Status != "committed" || s.Slots[1].Version != "v1.0.0" ||
		s.Slots[0].Status != "previous" || s.Last == nil || s.Last.Result != "committed" {
		t.Fatalf("slots after the soak: %+v", s)
	}
	if sys, err := c.System(); err != nil || sys.Slot != "B" {
		t.Errorf("system after the commit: slot %q (%v)", sys.Slot, err)
	}
	if !strings.Contains(bt.console.String(), "trial passed; committed") {
		t.Errorf("console lacks the commit")
	}
	// A plain reboot stays on the committed slot.
	if err := c.Reboot(false); err != nil {
		t.Fatalf("reboot: %v", err)
	}
	rebooted(bt, 2*time.Minute)
	bt = bootDisk(fwd)
	up(bt, true)
	if got := booted(bt); got != "B" {
		t.Fatalf("a reboot after the commit booted slot %s, want B", got)
	}

	// A power cut while the inactive slot is written: the box boots the
	// committed slot, nothing is armed, and the slot takes the next
	// update.
	before := slots()
	cut, err := os.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	defer cut.Close()
	go c.Update(cut, false) // ends with QEMU
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		p, err := c.UpdateStatus()
		if err == nil && p.State == "receiving" && p.Total > 0 && p.Bytes > p.Total/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload never got halfway: %+v %v", p, err)
		}
	}
	bt.vm.Kill()
	bt = bootDisk(fwd)
	up(bt, true)
	if got := booted(bt); got != "B" {
		t.Fatalf("after a power cut during the install the box booted slot %s, want B", got)
	}
	if s := slots(); s.Committed != "B" || s.Try != "" || s.Trial != "" || s.Slots[0] != before.Slots[0] {
		t.Errorf("after a power cut during the install: %+v, slot A before: %+v", s, before.Slots[0])
	}

	// 2. A bundle whose /init exits at once: a kernel panic.
	if u, err := upload(panicky); err != nil || u.Slot != "A" || u.State != "rebooting" {
		t.Fatalf("update to the panicking image: %+v %v", u, err)
	}
	rebooted(bt, 2*time.Minute)
	bad := bootDisk(fwd)
	if !b.QEMU.Firmware && bad.vm.Slot.Slot != "A" {
		t.Fatalf("the trial of the panicking image booted slot %s, want A", bad.vm.Slot.Slot)
	}
	badStart := bad.vm.Started
	rebooted(bad, 2*time.Minute)
	if out := bad.console.String(); !strings.Contains(out, "Kernel panic") {
		t.Errorf("the panicking image's console shows no kernel panic")
	}
	bt = bootDisk(fwd)
	up(bt, true)
	if got := booted(bt); got != "B" {
		t.Fatalf("after the panic the box booted slot %s, want B", got)
	}
	panicToServe := time.Since(badStart)
	s = slots()
	if s.Committed != "B" || s.Slots[0].Status != "bad" || s.Slots[0].Version != "v1.1.0" || !strings.Contains(s.Slots[0].Reason, "never reached PID 1") ||
		s.Last == nil || s.Last.Result != "rolled_back" || s.Last.Version != "v1.1.0" {
		t.Errorf("slots after the panic: %+v", s)
	}
	refused(panicky, "failed its trial before")

	// 3. A firmware that boots but fails its soak: its BGP session never
	// comes up.
	if u, err := upload(soakFails); err != nil || u.Slot != "A" || u.State != "rebooting" {
		t.Fatalf("update to v1.2.0: %+v %v", u, err)
	}
	rebooted(bt, 2*time.Minute)
	bad = bootDisk(fwdNoBGP)
	if !b.QEMU.Firmware && bad.vm.Slot.Slot != "A" {
		t.Fatalf("the trial of v1.2.0 booted slot %s, want A", bad.vm.Slot.Slot)
	}
	badStart = bad.vm.Started
	rebooted(bad, 3*time.Minute)
	if out := bad.console.String(); !strings.Contains(out, "trial failed; marking the slot bad") {
		t.Errorf("v1.2.0's console lacks the failed soak")
	}
	bt = bootDisk(fwd)
	up(bt, true)
	if got := booted(bt); got != "B" {
		t.Fatalf("after the failed soak the box booted slot %s, want B", got)
	}
	soakToServe := time.Since(badStart)
	s = slots()
	if s.Committed != "B" || s.Slots[0].Status != "bad" || s.Slots[0].Version != "v1.2.0" || !strings.Contains(s.Slots[0].Reason, "soak failed: bgp") ||
		s.Last == nil || s.Last.Result != "rolled_back" || len(s.Bad) != 2 {
		t.Errorf("slots after the failed soak: %+v", s)
	}
	refused(soakFails, "soak failed")
	bt.poweroff(t)

	// 4. The watchdog: a node that never becomes healthy — its DNS
	// server listens only on an address nothing routes to it (bound
	// non-locally, as anycast addresses are), so its own liveness
	// queries go unanswered; a valid config, so PID 1 does not fall back
	// to the last good one — is not fed, and the i6300esb resets the box
	// within its timeout (no boot grace).
	im, err = OpenImage(disk)
	if err != nil {
		t.Fatal(err)
	}
	broken := fmt.Sprintf(`node:
  name: %s
dns:
  listen: ["10.99.0.1:53"]
network:
  links:
    - name: eth0
      addresses: [10.0.2.15/24]
      gateway4: 10.0.2.2
system:
  watchdog: {timeout: 10s, boot_grace: 0s}
`, name)
	if err := im.WriteFile(board.PartBoot, "provision/node.yaml", []byte(broken)); err != nil {
		t.Fatal(err)
	}
	im.Close()
	bt = bootDisk(fwd)
	wctx, wcancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer wcancel()
	// The feeding stops at arming (the node is not up yet); the health
	// checks start optimistic, so it may be fed a moment once the node
	// is up, and stop again: the reset is timed from the last stop.
	const starving = "watchdog: node unhealthy, not feeding"
	off, err := bt.console.WaitFor(wctx, starving, 0)
	if err != nil {
		t.Fatalf("the unhealthy node's watchdog: %v", err)
	}
	var starvedAt atomic.Int64
	starvedAt.Store(time.Now().UnixNano())
	go func() {
		for {
			next, err := bt.console.WaitFor(wctx, starving, off)
			if err != nil {
				return
			}
			off = next
			starvedAt.Store(time.Now().UnixNano())
		}
	}()
	rebooted(bt, 2*time.Minute)
	toReset := time.Since(time.Unix(0, starvedAt.Load()))
	if toReset > 10*time.Second+5*time.Second {
		t.Errorf("watchdog reset %s after feeding stopped, timeout 10 s", toReset.Round(100*time.Millisecond))
	}

	t.Logf("%s: bundles: good %.1f MB, panicking %.1f MB; good update: installed in %s, committed %s after the upload started (soak 10 s); "+
		"kernel panic: serving on the old slot %s after the bad image started (panic=10 included); failed soak: serving on the old slot %s after the bad image started; "+
		"watchdog (timeout 10 s): reset %s after it was last fed",
		b.Name, float64(fileSize(good))/1e6, float64(fileSize(panicky))/1e6, installed.Round(time.Second), toCommit.Round(time.Second),
		panicToServe.Round(time.Second), soakToServe.Round(time.Second), toReset.Round(100*time.Millisecond))
}

type drainSeen struct{ gshut, withdrawn, exit time.Time }

// watchDrain polls BIRD until the VM exits: when the node's prefix first
// carried GRACEFUL_SHUTDOWN (65535,0), and when it was then withdrawn.
func watchDrain(br *bird, exited <-chan struct{}) <-chan drainSeen {
	ch := make(chan drainSeen, 1)
	go func() {
		var d drainSeen
		for {
			select {
			case <-exited:
				d.exit = time.Now()
				ch <- d
				return
			case <-time.After(50 * time.Millisecond):
			}
			out, err := br.birdc("show", "route", "all", "protocol", "node")
			if err != nil {
				continue
			}
			switch {
			case d.gshut.IsZero() && strings.Contains(out, "(65535,0)"):
				d.gshut = time.Now()
			case !d.gshut.IsZero() && d.withdrawn.IsZero() && !strings.Contains(out, "10.53.0.0/24"):
				d.withdrawn = time.Now()
			}
		}
	}()
	return ch
}

// makeBundle signs a bundle of a kernel file and an initramfs.
func makeBundle(t *testing.T, dir, boardName, version string, signer bundle.Signer, kernel, initrdName string, initrd []byte) string {
	t.Helper()
	k, err := os.Open(kernel)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	fi, err := k.Stat()
	if err != nil {
		t.Fatal(err)
	}
	parts := []bundle.Source{
		{Role: bundle.Kernel, Name: filepath.Base(kernel), Size: fi.Size(), R: k},
		{Role: bundle.Initramfs, Name: initrdName, Size: int64(len(initrd)), R: bytes.NewReader(initrd)},
	}
	path := filepath.Join(dir, version+".bundle")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := bundle.Create(f, bundle.CreateOptions{Board: boardName, Version: version, Built: testEpoch(), Signers: []bundle.Signer{signer}}, parts); err != nil {
		t.Fatal(err)
	}
	return path
}

// exitingInitramfs is an initramfs whose /init is a static program that
// exits at once: the kernel panics ("Attempted to kill init!").
func exitingInitramfs(t *testing.T, dir string) []byte {
	t.Helper()
	src := filepath.Join(dir, "exiting")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module exiting\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "exiting.bin")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the exiting /init: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	for _, r := range []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticRecord(data, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	} {
		if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
