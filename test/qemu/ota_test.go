package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/ota/agent/agenttest"
	"github.com/shoestring-dns/shoestring/ota/bundle"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestOTA updates booted atom64 boxes — real GRUB from the MBR under
// SeaBIOS choosing the slot from grubenv (try_slot, cleared before it is
// booted) — through the management API over the tailnet. Each update is
// a reboot the node makes itself (QEMU runs with -no-reboot, so a reboot
// ends QEMU and the test boots the disk again: a reset). Two disks, each
// its own box, BIRD and chain of boots, run side by side:
//
// "update" (5 boots):
//  1. a good update (v1.0.0 into slot B): the node drains (BIRD sees
//     GRACEFUL_SHUTDOWN, then the withdrawal, before QEMU exits), reboots
//     once into B, soaks ota.soak (10 s here), checks every health part,
//     its zones' serials and every zone's SOA from itself, and commits B;
//     meanwhile a second node announces the same prefix to the same BIRD
//     and a client asks the anycast address through BIRD at 200 q/s
//     (anycast_test.go): the box answers before its drain, the second
//     node while it reboots, the box again after, and nothing is lost
//     but queries in flight at a route change;
//  2. a power cut (QEMU killed) halfway through writing slot A: the box
//     boots committed B again (a reset after the commit stays on it),
//     nothing armed, slot A's record unchanged, and A takes the next
//     update;
//  3. a firmware that boots but fails its soak (v1.2.0, the good image,
//     into slot A, booted while its BGP peer cannot reach it: the session
//     never comes up): at the end of the soak the node marks A bad with
//     the failing check and reboots into B by itself; offered again, it
//     is refused;
//  4. corrupt bundles (corrupt_test.go) — a flipped bit in the manifest,
//     the signature, the kernel, the last byte; a truncated copy; an
//     untrusted key; another board — each refused with its reason, the
//     slots' records unchanged, and once the box is powered off slot A's
//     files on the disk are the image's own.
//
// "fallback" (10 boots):
//  1. a bundle whose /init exits at once (v1.1.0 into slot B of a fresh
//     box): the kernel panics, panic=10 resets the box, GRUB boots
//     committed A (the one-shot try was spent), whose PID 1 marks B bad
//     with the reason; the same bundle offered again is refused;
//  2. a kernel blind to its disk (v1.4.0: the initramfs's ahci.ko
//     broken, badimages_test.go; AHCI boards): its PID 1 finds no disk
//     with the command line's MBR signature and restarts the box, GRUB
//     boots A, which marks B bad; offered again, refused;
//  3. a firmware that arms the watchdog and hangs (v1.5.0: an /init
//     that loads i6300esb, sets 10 s and sleeps): the watchdog resets
//     the box, GRUB boots A, which marks B bad; offered again, refused;
//  4. a power cut while the node writes the boot loader's state (v1.0.0
//     into B, QEMU killed the moment grubenv's try_slot=B reaches the
//     disk, grubenvcut_test.go): GRUB boots B once all the same, and in
//     that trial a power cut at the commit (QEMU killed as its soak
//     ends): the box comes back on A (B bad) or on B (committed), its
//     slot state agreeing with GRUB, never on neither, and a zone
//     acknowledged before the update is still served;
//  5. the watchdog: the box rebooted with a config on which its DNS
//     server never answers its own liveness queries (it listens only on
//     an address nothing routes to it) and no boot grace is reset by
//     the i6300esb within its 10 s timeout.
//
// It measures the time from the upload to the commit, and from each bad
// image's start to the old slot answering DNS again.
//
// SHOESTRING_OTA_BOARD=qemu-amd64 runs it on the harness's tryboot
// instead of GRUB.
func TestOTA(t *testing.T) {
	name := "atom64"
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
	// ("qemu-test", a development version, which every boot's binary
	// reports: the slot tells the firmware apart). Once a bundle is
	// installed and booted, its signed version is the one a new bundle
	// must be newer than.
	signer, pub := agenttest.Key(t, "qemu-test")
	initrd, err := os.ReadFile(res.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	initrdName := filepath.Base(res.Initrd)
	bundles := otaBundles{
		good:      makeBundle(t, dir, b.Name, "v1.0.0", signer, res.Kernel, initrdName, initrd),
		panicky:   makeBundle(t, dir, b.Name, "v1.1.0", signer, res.Kernel, initrdName, exitingInitramfs(t, dir)),
		soakFails: makeBundle(t, dir, b.Name, "v1.2.0", signer, res.Kernel, initrdName, initrd),
	}
	bundles.hangs = makeBundle(t, dir, b.Name, "v1.5.0", signer, res.Kernel, initrdName, hangingInitramfs(t, dir, initrd))
	if b.QEMU.DiskIf == "ahci" {
		bundles.blind = makeBundle(t, dir, b.Name, "v1.4.0", signer, res.Kernel, initrdName, blindInitramfs(t, initrd))
	}
	bundles.corrupt = corruptBundles(t, dir, b.Name, signer, res.Kernel, initrdName, initrd)
	t.Logf("%s: bundles: good %.1f MB, panicking %.1f MB", b.Name, float64(fileSize(bundles.good))/1e6, float64(fileSize(bundles.panicky))/1e6)
	t.Run("update", func(t *testing.T) {
		t.Parallel()
		otaUpdate(newOTABox(t, b, res.Disk, tn, pub, "update"), bundles)
	})
	t.Run("fallback", func(t *testing.T) {
		t.Parallel()
		otaFallback(newOTABox(t, b, res.Disk, tn, pub, "fallback"), bundles)
	})
}

type otaBundles struct {
	good, panicky, soakFails string
	// hangs arms the watchdog and hangs.
	hangs string
	// blind cannot see its disk (its SATA driver broken): boards whose
	// disk is on AHCI.
	blind   string
	corrupt []corruptBundle
}

// otaBox is one box of TestOTA: its disk, its BIRD, the forwards to it
// and its management API over the tailnet.
type otaBox struct {
	t       *testing.T
	b       *board.Board
	name    string
	dir     string
	disk    string
	br      *bird
	c       *api.Client
	dnsPort int
	fwd     []Forward
	n       int
	boots   []*boot
	// anycast is the "update" box's router, second node and client
	// (nil for the others, whose BIRD peers with the box alone).
	anycast *anycastLab
	// slotA is slot A's files (SHA-256s) as the image has them.
	slotA map[string]string
}

// newOTABox copies the image to a 1 GiB disk and provisions it.
func newOTABox(t *testing.T, b *board.Board, image string, tn *testTailnet, pub, role string) *otaBox {
	x := &otaBox{t: t, b: b, name: "test-ota-" + b.Name + "-" + role, dir: t.TempDir()}
	x.disk = filepath.Join(x.dir, "disk.img")
	if err := CopyDisk(image, x.disk, 1<<30); err != nil {
		t.Fatal(err)
	}
	im, err := OpenImage(x.disk)
	if err != nil {
		t.Fatal(err)
	}
	cfg := nodeYAML(x.name, ntpServer(t), tn.guestControlURL) + "ota:\n  keys: [\"" + pub + "\"]\n  soak: 10s\n"
	if role == "update" {
		// Its answers name it (the second node's say "second").
		cfg = strings.Replace(cfg, "dns:\n", "dns:\n  nsid: "+x.name+"\n", 1)
	}
	for file, text := range map[string]string{
		"node.yaml":         cfg,
		"example.test.zone": zoneText,
		"tailnet.authkey":   tailnetKey + "\n",
	} {
		if err := im.WriteFile(board.PartBoot, "provision/"+file, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	im.Close()
	x.slotA = slotFiles(t, x.disk, board.PartSlotA)
	ports, err := refserver.Ports(2)
	if err != nil {
		t.Fatal(err)
	}
	x.dnsPort = ports[0]
	x.fwd = []Forward{{"udp", ports[0], 53, ""}, {"tcp", ports[0], 53, ""}, {"tcp", ports[1], 179, ""}}
	if role == "update" {
		x.anycast = startAnycastLab(t, ports[1], ports[0])
		x.br = x.anycast.br
	} else {
		x.br = startBIRD(t, ports[1])
	}
	x.c = tn.apiClient(x.name)
	return x
}

// boot boots the disk with forwards f.
func (x *otaBox) boot(f []Forward) *boot {
	x.n++
	bt := startBoot(x.t, x.b, x.disk, filepath.Join(x.dir, fmt.Sprintf("console-%d.log", x.n)), f)
	bt.api, bt.dnsAddr = x.c, fmt.Sprintf("127.0.0.1:%d", x.dnsPort)
	x.boots = append(x.boots, bt)
	return bt
}

// cpu is the CPU time of the box's boots so far (the last one killed
// if it still runs).
func (x *otaBox) cpu() string {
	var d time.Duration
	for _, bt := range x.boots {
		bt.vm.Kill()
		d += bt.vm.CPU
	}
	return fmt.Sprintf("%d boots, QEMU CPU time %s", len(x.boots), d.Round(time.Second))
}

// up waits until a boot answers DNS and its API, and BGP when reachable.
func (x *otaBox) up(bt *boot, bgp bool) {
	x.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := bt.waitAnswer(ctx, "www.example.test.", "192.0.2.80"); err != nil {
		x.t.Fatalf("boot %d: %v", x.n, err)
	}
	if bgp {
		if err := bt.waitBGP(ctx, x.br); err != nil {
			x.t.Fatal(err)
		}
	}
	if err := waitAPI(ctx, x.c, bt.vm.Done()); err != nil {
		x.t.Fatalf("boot %d: management API over the tailnet: %v", x.n, err)
	}
}

// booted is the slot a boot came from: the harness's choice, or with a
// real boot loader what the node says (once it is up), which must be
// the slot GRUB said it booted.
func (x *otaBox) booted(bt *boot) string {
	x.t.Helper()
	if !x.b.QEMU.Firmware {
		return bt.vm.Slot.Slot
	}
	sys, err := x.c.System()
	if err != nil {
		x.t.Fatalf("system: %v", err)
	}
	if g := grubSlot(bt); g != sys.Slot {
		x.t.Errorf("boot %d: GRUB booted slot %q, the node says %q", x.n, g, sys.Slot)
	}
	return sys.Slot
}

// trialSlot checks that a boot that will not come up (a trial) was
// handed the slot want: by the harness, or by GRUB as its console says.
func (x *otaBox) trialSlot(bt *boot, want string) {
	x.t.Helper()
	if !x.b.QEMU.Firmware {
		if bt.vm.Slot.Slot != want {
			x.t.Fatalf("the trial booted slot %s, want %s", bt.vm.Slot.Slot, want)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := bt.console.WaitFor(ctx, "Shoestring: booting slot "+want, 0); err != nil {
		x.t.Fatalf("GRUB did not boot the trial slot %s: %v (booted %q)", want, err, grubSlot(bt))
	}
}

// grubSlot is the slot GRUB's menu entry said it booted ("" if none).
func grubSlot(bt *boot) string {
	const m = "Shoestring: booting slot "
	out := bt.console.String()
	i := strings.LastIndex(out, m)
	if i < 0 || i+len(m) >= len(out) {
		return ""
	}
	return out[i+len(m) : i+len(m)+1]
}

// rebooted waits for the node to reboot (QEMU exits) by itself.
func (x *otaBox) rebooted(bt *boot, within time.Duration) {
	x.t.Helper()
	if err := bt.vm.Wait(within); err != nil {
		x.t.Fatalf("boot %d did not reboot: %v", x.n, err)
	}
}

func (x *otaBox) slots() api.SlotsStatus {
	x.t.Helper()
	s, err := x.c.Slots()
	if err != nil {
		x.t.Fatalf("slots: %v", err)
	}
	return s
}

func (x *otaBox) upload(file string) (api.UpdateStatus, error) {
	f, err := os.Open(file)
	if err != nil {
		x.t.Fatal(err)
	}
	defer f.Close()
	return x.c.Update(f, false)
}

func (x *otaBox) refused(file, want string) {
	x.t.Helper()
	_, err := x.upload(file)
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusUnprocessableEntity || !strings.Contains(ae.Body.Error, want) {
		x.t.Errorf("%s offered again: %v, want 422 naming %q", filepath.Base(file), err, want)
	}
}

// failingTrial offers the running box (*bt, on committed slot A) a
// bundle whose trial cannot succeed, and checks that the box gets back
// by itself: GRUB boots the trial in slot B once, its console shows
// console (the way it fails) before it restarts within the given time,
// the box comes back on A serving, B is marked bad with no boot of it
// recorded, the last update rolled back, and the bundle is refused from
// then on. *bt becomes the box's new boot; the result is how long from
// the failing firmware's start until the box served again.
func (x *otaBox) failingTrial(bt **boot, bundle, version, what, console string, within time.Duration) time.Duration {
	t := x.t
	t.Helper()
	if u, err := x.upload(bundle); err != nil || u.Slot != "B" || u.State != "rebooting" {
		t.Fatalf("update to %s: %+v %v", what, u, err)
	}
	x.rebooted(*bt, 2*time.Minute)
	bad := x.boot(x.fwd)
	x.trialSlot(bad, "B")
	start := bad.vm.Started
	x.rebooted(bad, within)
	if !strings.Contains(bad.console.String(), console) {
		t.Errorf("%s's console lacks %q", what, console)
	}
	*bt = x.boot(x.fwd)
	x.up(*bt, true)
	if got := x.booted(*bt); got != "A" {
		t.Fatalf("after %s the box booted slot %s, want A", what, got)
	}
	toServe := time.Since(start)
	s := x.slots()
	if s.Committed != "A" || s.Slots[1].Status != "bad" || s.Slots[1].Version != version || !strings.Contains(s.Slots[1].Reason, "never recorded a boot") ||
		s.Last == nil || s.Last.Result != "rolled_back" || s.Last.Version != version {
		t.Errorf("slots after %s: %+v", what, s)
	}
	x.refused(bundle, "failed its trial before")
	return toServe
}

// otaUpdate: the good update with its drain, a power cut while writing
// the inactive slot, a failed soak.
func otaUpdate(x *otaBox, bundles otaBundles) {
	t, b := x.t, x.b
	// 1. The good update.
	bt := x.boot(x.fwd)
	x.up(bt, true)
	if got := x.booted(bt); got != "A" {
		t.Fatalf("fresh image: booted slot %s", got)
	}
	if s := x.slots(); s.Method != string(b.Boot.Method) || s.Booted != "A" || s.Committed != "A" || s.Trial != "" {
		t.Errorf("slots before the update: %+v", s)
	}
	// A client asks the anycast address through BIRD for the whole
	// update: the box answers while its route is preferred, the second
	// node while it drains, reboots and comes back.
	if err := x.anycast.secondUp(time.Minute); err != nil {
		t.Fatal(err)
	}
	load := x.anycast.startLoad(anycastQPS, 64)
	loadStart := time.Now()
	for deadline := time.Now().Add(30 * time.Second); answeredBy(load.Results(), x.name, loadStart, time.Now()) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			load.Stop()
			t.Fatalf("the box never answered the anycast address through BIRD: %+v\n%s", sumLoad(load.Results()), x.br.routes())
		}
	}
	drain := watchDrain(x.br, bt.vm.Done())
	start := time.Now()
	u, err := x.upload(bundles.good)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	installed := time.Since(start)
	if u.State != "rebooting" || u.Slot != "B" || u.Version != "v1.0.0" || u.Last == nil || u.Last.Result != "installed" || u.Last.Serials["example.test."] != 2026010101 {
		t.Errorf("update: %+v", u)
	}
	x.rebooted(bt, 2*time.Minute)
	for _, want := range []string{"draining and rebooting into the new slot once", "drained", "data partition unmounted cleanly"} {
		if !strings.Contains(bt.console.String(), want) {
			t.Errorf("console of the update's reboot lacks %q", want)
		}
	}
	// BIRD saw the drain before the box went down: the route with
	// GRACEFUL_SHUTDOWN, then withdrawn, while the session was up.
	d := <-drain
	if d.gshut.IsZero() || d.withdrawn.IsZero() || !d.gshut.Before(d.withdrawn) || !d.withdrawn.Before(d.exit) {
		t.Errorf("drain at BIRD: GRACEFUL_SHUTDOWN at %v, withdrawn at %v, QEMU exited at %v", d.gshut, d.withdrawn, d.exit)
	}
	bt = x.boot(x.fwd)
	x.up(bt, true)
	backUp := time.Now()
	if got := x.booted(bt); got != "B" {
		t.Fatalf("after the update the box booted slot %s, want B", got)
	}
	s := x.slots()
	for deadline := time.Now().Add(2 * time.Minute); s.Committed != "B" && time.Now().Before(deadline); s = x.slots() {
		time.Sleep(time.Second)
	}
	toCommit := time.Since(start)
	if s.Committed != "B" || s.Booted != "B" || s.Trial != "" || s.Slots[1].Status != "committed" || s.Slots[1].Version != "v1.0.0" ||
		s.Slots[0].Status != "previous" || s.Last == nil || s.Last.Result != "committed" {
		t.Fatalf("slots after the soak: %+v", s)
	}
	if sys, err := x.c.System(); err != nil || sys.Slot != "B" {
		t.Errorf("system after the commit: slot %q (%v)", sys.Slot, err)
	}
	if !strings.Contains(bt.console.String(), "trial passed; committed") {
		t.Errorf("console lacks the commit")
	}
	// Back on the box: its route is preferred again once it announces.
	for deadline := time.Now().Add(30 * time.Second); answeredBy(load.Results(), x.name, backUp, time.Now()) == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	rs := load.Stop()
	lf := sumLoad(rs)
	if n := answeredBy(rs, x.name, loadStart, d.gshut); n == 0 {
		t.Errorf("the box answered none of the anycast queries before its drain")
	}
	if n := answeredBy(rs, secondNSID, d.exit, backUp); n == 0 {
		t.Errorf("the second node answered none of the anycast queries while the box rebooted")
	}
	if n := answeredBy(rs, x.name, backUp, time.Now()); n == 0 {
		t.Errorf("the box answered none of the anycast queries after its update")
	}
	if lf.failed > anycastLossAllowance {
		t.Errorf("anycast client through BIRD during the update: %d of %d queries lost, allowed %d (in flight at a route switch); first: %v",
			lf.failed, lf.total, anycastLossAllowance, lf.firstFailures)
	}
	t.Logf("%s: anycast client through BIRD, %d q/s from before the upload to after the commit (%s): %d queries, %d lost %v, "+
		"answered by the box %d, by the second node %d; longest gap between answered queries %s (at %s), slowest answer %s, %d not sent (every socket waiting)",
		b.Name, anycastQPS, time.Since(loadStart).Round(time.Second), lf.total, lf.failed, lf.firstFailures,
		lf.by[x.name], lf.by[secondNSID], lf.longestGap.Round(time.Millisecond), lf.gapAt.Format("15:04:05.000"), lf.slowest.Round(time.Millisecond), load.Skipped())
	t.Logf("%s: drain at BIRD: GRACEFUL_SHUTDOWN %s after the upload started, withdrawn %s later, QEMU exited %s after that; box back (DNS, BGP, API) %s after the exit",
		b.Name, d.gshut.Sub(start).Round(10*time.Millisecond), d.withdrawn.Sub(d.gshut).Round(10*time.Millisecond), d.exit.Sub(d.withdrawn).Round(10*time.Millisecond), backUp.Sub(d.exit).Round(time.Second))

	// 2. A power cut while the inactive slot is written: the box boots
	// the committed slot again, nothing is armed, and the slot takes the
	// next update (the bundle is step 3's: v1.0.0 now runs, and would be
	// refused).
	before := x.slots()
	cut, err := os.Open(bundles.soakFails)
	if err != nil {
		t.Fatal(err)
	}
	defer cut.Close()
	go x.c.Update(cut, false) // ends with QEMU
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		p, err := x.c.UpdateStatus()
		if err == nil && p.State == "receiving" && p.Total > 0 && p.Bytes > p.Total/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload never got halfway: %+v %v", p, err)
		}
	}
	bt.vm.Kill()
	bt = x.boot(x.fwd)
	x.up(bt, true)
	if got := x.booted(bt); got != "B" {
		t.Fatalf("after a power cut during the install the box booted slot %s, want B", got)
	}
	if s := x.slots(); s.Committed != "B" || s.Try != "" || s.Trial != "" || s.Slots[0] != before.Slots[0] {
		t.Errorf("after a power cut during the install: %+v, slot A before: %+v", s, before.Slots[0])
	}

	// 3. A firmware that boots but fails its soak: its BGP session never
	// comes up.
	if u, err := x.upload(bundles.soakFails); err != nil || u.Slot != "A" || u.State != "rebooting" {
		t.Fatalf("update to v1.2.0: %+v %v", u, err)
	}
	x.rebooted(bt, 2*time.Minute)
	// The BGP peer cannot reach the node: no forward to its port 179.
	bad := x.boot(x.fwd[:2])
	x.trialSlot(bad, "A")
	badStart := bad.vm.Started
	x.rebooted(bad, 3*time.Minute)
	if out := bad.console.String(); !strings.Contains(out, "trial failed; marking the slot bad") {
		t.Errorf("v1.2.0's console lacks the failed soak")
	}
	bt = x.boot(x.fwd)
	x.up(bt, true)
	if got := x.booted(bt); got != "B" {
		t.Fatalf("after the failed soak the box booted slot %s, want B", got)
	}
	soakToServe := time.Since(badStart)
	s = x.slots()
	if s.Committed != "B" || s.Slots[0].Status != "bad" || s.Slots[0].Version != "v1.2.0" || !strings.Contains(s.Slots[0].Reason, "soak failed: bgp") ||
		s.Last == nil || s.Last.Result != "rolled_back" || len(s.Bad) != 1 {
		t.Errorf("slots after the failed soak: %+v", s)
	}
	x.refused(bundles.soakFails, "soak failed")

	// 4. Corrupt bundles, uploaded as an operator would: each refused
	// with its reason, the slots' records unchanged; and once the box is
	// off, the inactive slot's files are what they were: A holds v1.2.0,
	// the image's own kernel and initramfs, as the image's slot A did.
	x.offerCorrupt(bundles.corrupt)
	bt.poweroff(t)
	if got := slotFiles(t, x.disk, board.PartSlotA); !maps.Equal(got, x.slotA) {
		t.Errorf("slot A after the corrupt uploads: %v, want the image's %v", got, x.slotA)
	}
	t.Logf("%s: good update: installed in %s, committed %s after the upload started (soak 10 s); "+
		"failed soak: serving on the old slot %s after the bad image started; %s",
		b.Name, installed.Round(time.Second), toCommit.Round(time.Second), soakToServe.Round(time.Second), x.cpu())
}

// otaFallback: a kernel panic on a fresh box's first update, a kernel
// blind to its disk, a hang once the watchdog is armed, power cuts, then
// the watchdog.
func otaFallback(x *otaBox, bundles otaBundles) {
	t, b := x.t, x.b
	// 1. A bundle whose /init exits at once: a kernel panic.
	bt := x.boot(x.fwd)
	x.up(bt, true)
	if got := x.booted(bt); got != "A" {
		t.Fatalf("fresh image: booted slot %s", got)
	}
	panicToServe := x.failingTrial(&bt, bundles.panicky, "v1.1.0", "the panicking image", "Kernel panic", 2*time.Minute)

	// 2. A firmware that cannot see its disk (its SATA driver broken):
	// it would serve nothing it was given yet answer its own queries, so
	// PID 1 restarts the box, and the spent try brings back slot A.
	var blindToServe time.Duration
	if bundles.blind != "" {
		blindToServe = x.failingTrial(&bt, bundles.blind, "v1.4.0", "the blind image", "the disk this firmware was loaded from is missing", 3*time.Minute)
	}

	// 3. A firmware that hangs before it is healthy, once the watchdog
	// is armed (as our PID 1 arms it at once): the watchdog resets the
	// box, and the spent try brings back slot A.
	hangToServe := x.failingTrial(&bt, bundles.hangs, "v1.5.0", "the hanging image", "hanging-init: watchdog armed; hanging", 3*time.Minute)

	// 4. A power cut at the commit: a zone is acknowledged, the good
	// bundle goes into B, and QEMU is killed when B's soak ends — as
	// its verdict is taken and the commit writes grubenv and the slot
	// state, a moment the host can only aim at. Whichever side of the
	// writes it lands on, the box comes back on a working slot, its
	// state agreeing with what GRUB booted, the zone still there.
	//
	// The same update first has the power cut while the node writes the
	// boot loader's state: QEMU is killed the moment the node's grubenv
	// write arming slot B reaches the disk (before the slot state file
	// records the trial, before the drain). GRUB must still boot B once,
	// and PID 1 count it as the trial it is.
	if _, err := x.c.PutZone("api.test", []byte(uploadedZone)); err != nil {
		t.Fatalf("zone upload: %v", err)
	}
	if x.b.QEMU.Firmware {
		envOff, err := grubenvOffset(x.disk)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(bundles.good)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		go x.c.Update(f, false) // cut short with QEMU
		seen, err := cutAtGrubenvWrite(bt, envOff, "B", 3*time.Minute)
		if err != nil {
			t.Fatalf("power cut at the node's grubenv write: %v", err)
		}
		if strings.Contains(bt.console.String(), "draining and rebooting") {
			t.Errorf("the power cut at the grubenv write came after the drain began")
		}
		t.Logf("%s: power cut at the node's grubenv write (try_slot=B), %s after the upload started", b.Name, seen.Round(100*time.Millisecond))
	} else {
		if u, err := x.upload(bundles.good); err != nil || u.Slot != "B" || u.State != "rebooting" {
			t.Fatalf("update to v1.0.0: %+v %v", u, err)
		}
		x.rebooted(bt, 2*time.Minute)
	}
	trial := x.boot(x.fwd)
	x.trialSlot(trial, "B")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := trial.console.WaitFor(ctx, "ota: trial boot; soaking before the commit", 0); err != nil {
		t.Fatalf("the trial of v1.0.0: %v", err)
	}
	time.Sleep(10 * time.Second) // ota.soak
	trial.vm.Kill()
	committed := strings.Contains(trial.console.String(), "trial passed; committed")
	bt = x.boot(x.fwd)
	x.up(bt, true)
	cutBooted := x.booted(bt)
	s := x.slots()
	switch cutBooted {
	case "B":
		// GRUB's slot=B was written: the box is on B, committed, or
		// still in its trial (the state file's half of the commit
		// lost), which commits after another soak.
		for deadline := time.Now().Add(2 * time.Minute); s.Committed != "B" && time.Now().Before(deadline); s = x.slots() {
			time.Sleep(time.Second)
		}
		if s.Committed != "B" || s.Slots[1].Status != "committed" || s.Slots[1].Version != "v1.0.0" {
			t.Errorf("power cut at the commit, booted B: %+v", s)
		}
	case "A":
		// The cut came before the commit: the trial is spent, B is bad.
		if committed || s.Committed != "A" || s.Slots[1].Status != "bad" {
			t.Errorf("power cut at the commit (commit logged: %v), booted A: %+v", committed, s)
		}
	default:
		t.Fatalf("power cut at the commit: booted slot %q", cutBooted)
	}
	if err := bt.waitAnswer(ctx, "www.api.test.", "192.0.2.81"); err != nil {
		t.Errorf("the zone acknowledged before the power cut: %v", err)
	}
	bt.poweroff(t)

	// 5. The watchdog: a node that never becomes healthy — its DNS
	// server listens only on an address nothing routes to it (bound
	// non-locally, as anycast addresses are), so its own liveness
	// queries go unanswered; a valid config, so PID 1 does not fall back
	// to the last good one — is not fed, and the i6300esb resets the box
	// within its timeout (no boot grace).
	im, err := OpenImage(x.disk)
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
`, x.name)
	if err := im.WriteFile(board.PartBoot, "provision/node.yaml", []byte(broken)); err != nil {
		t.Fatal(err)
	}
	im.Close()
	bt = x.boot(x.fwd)
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
	x.rebooted(bt, 2*time.Minute)
	toReset := time.Since(time.Unix(0, starvedAt.Load()))
	if toReset > 10*time.Second+5*time.Second {
		t.Errorf("watchdog reset %s after feeding stopped, timeout 10 s", toReset.Round(100*time.Millisecond))
	}
	t.Logf("%s: a firmware blind to its disk: serving on the old slot %s after it started; one that hangs once the watchdog is armed (timeout 10 s): %s",
		b.Name, blindToServe.Round(time.Second), hangToServe.Round(time.Second))
	t.Logf("%s: kernel panic: serving on the old slot %s after the bad image started (panic=10 included); "+
		"power cut at the commit (commit logged before the cut: %v): came back on slot %s; "+
		"watchdog (timeout 10 s): reset %s after it was last fed; %s",
		b.Name, panicToServe.Round(time.Second), committed, cutBooted, toReset.Round(100*time.Millisecond), x.cpu())
}

type drainSeen struct{ gshut, withdrawn, exit time.Time }

// The anycast client's rate during the good update, and how many of its
// queries may be lost: those in flight at a moment the route changes
// (queries × round trip; the box keeps answering through its drain, so
// the expected loss is none).
const (
	anycastQPS           = 200
	anycastLossAllowance = 2
)

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

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
