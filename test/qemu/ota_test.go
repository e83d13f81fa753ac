package qemu

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/bundle"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestOTAInstall boots the qemu-amd64 image with a public key provisioned
// in ota.keys, installs a bundle of the same image signed with that key
// through the management API (over the tailnet), and checks that PID 1's
// agent wrote slot B and armed it for one try: the slot state through the
// API, the files on slot B's partition after a clean poweroff; then that
// the next boot comes from slot B, counted as the trial's first. Soak,
// commit and fallback are the update transaction's, not tested here.
func TestOTAInstall(t *testing.T) {
	b, err := board.Get("qemu-amd64")
	if err != nil {
		t.Fatal(err)
	}
	requireTools(t, b)
	tn := startTailnet(t)
	res := buildImage(t, b, filepath.Join(testenv.RepoRoot(), "out", "test"))
	start := time.Now()

	// A signing key of the test's own, its public half trusted by the
	// node's config; the bundle is the image's own kernel and initramfs
	// as v1.0.0 (newer than the image's "qemu-test", a development
	// version).
	priv, pub, err := bundle.GenerateKey("qemu-test")
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := bundle.ParseSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var parts []bundle.Source
	for _, p := range []struct {
		role bundle.Role
		file string
	}{{bundle.Kernel, res.Kernel}, {bundle.Initramfs, res.Initrd}} {
		f, err := os.Open(p.file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fi, _ := f.Stat()
		parts = append(parts, bundle.Source{Role: p.role, Name: filepath.Base(p.file), Size: fi.Size(), R: f})
	}
	bundleFile := filepath.Join(dir, "update.bundle")
	bf, err := os.Create(bundleFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Create(bf, bundle.CreateOptions{Board: b.Name, Version: "v1.0.0", Built: testEpoch(), Signers: []bundle.Signer{signer}}, parts); err != nil {
		t.Fatal(err)
	}
	bf.Close()

	disk := filepath.Join(dir, "disk.img")
	if err := CopyDisk(res.Disk, disk, 1<<30); err != nil {
		t.Fatal(err)
	}
	im, err := OpenImage(disk)
	if err != nil {
		t.Fatal(err)
	}
	if im.Exists(board.PartSlotB, filepath.Base(res.Kernel)) {
		t.Fatalf("slot B of a fresh image is not empty")
	}
	name := "test-ota-" + b.Name
	for file, text := range map[string]string{
		"node.yaml":         nodeYAML(name, ntpServer(t), tn.guestControlURL) + "ota:\n  keys: [\"" + pub + "\"]\n",
		"example.test.zone": zoneText,
		"tailnet.authkey":   tailnetKey + "\n",
	} {
		if err := im.WriteFile(board.PartBoot, "provision/"+file, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	im.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bt := startBoot(t, b, disk, filepath.Join(dir, "console.log"), nil)
	bt.api = tn.apiClient(name)
	if err := waitAPI(ctx, bt.api, bt.vm.Done()); err != nil {
		t.Fatalf("management API over the tailnet: %v", err)
	}
	toAPI := time.Since(start)
	s, err := bt.api.Slots()
	if err != nil {
		t.Fatalf("slots before the update: %v", err)
	}
	if s.Method != string(board.Harness) || s.Booted != "A" || s.Committed != "A" || s.Trial != "" {
		t.Errorf("slots before the update: %+v", s)
	}

	// The upload: some 70 MB through the tailnet.
	up := *bt.api
	hc := *bt.api.HTTP
	hc.Timeout = 4 * time.Minute
	up.HTTP = &hc
	bf, err = os.Open(bundleFile)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	upStart := time.Now()
	u, err := up.Update(bf, false)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	took := time.Since(upStart)
	if u.State != "armed" || u.Slot != "B" || u.Version != "v1.0.0" || u.Last == nil || u.Last.Result != "installed" {
		t.Errorf("update: %+v", u)
	}
	s, err = bt.api.Slots()
	if err != nil {
		t.Fatalf("slots after the update: %v", err)
	}
	if s.Committed != "A" || s.Booted != "A" || s.Trial != "B" || s.Try != "B" || s.Boots != 0 || len(s.Slots) != 2 ||
		s.Slots[1].Version != "v1.0.0" || s.Slots[1].Status != "trying" || !s.Slots[0].Running {
		t.Errorf("slots after the update: %+v", s)
	}
	bt.poweroff(t)

	// Slot B's partition holds the bundle's kernel and initramfs.
	im, err = OpenImage(disk)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{res.Kernel, res.Initrd} {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := im.ReadFile(board.PartSlotB, filepath.Base(f))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("slot B %s: %d bytes, want %d (%v)", filepath.Base(f), len(got), len(want), err)
		}
	}
	// The harness, like the Pi, boots the slot's cmdline.txt: written
	// for slot B.
	cl, err := im.ReadFile(board.PartSlotB, "cmdline.txt")
	if err != nil || !strings.Contains(string(cl), "shoestring.slot=B") {
		t.Errorf("slot B cmdline.txt: %q (%v)", cl, err)
	}
	im.Close()
	if t.Failed() {
		return
	}

	// The armed trial: the next boot comes from slot B, and PID 1 counts
	// it. (The image stamps its own version, so the slot, not the
	// version, is what tells the new firmware runs.)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel2()
	bt2 := startBoot(t, b, disk, filepath.Join(dir, "console-2.log"), nil)
	bt2.api = bt.api
	if bt2.vm.Slot.Slot != "B" {
		t.Fatalf("after the update the harness booted slot %s, want B", bt2.vm.Slot.Slot)
	}
	if err := waitAPI(ctx2, bt2.api, bt2.vm.Done()); err != nil {
		t.Fatalf("slot B: management API over the tailnet: %v", err)
	}
	toAPI2 := bt2.since()
	if sys, err := bt2.api.System(); err != nil || sys.Slot != "B" {
		t.Errorf("slot B boot: system slot %q (%v)", sys.Slot, err)
	}
	s, err = bt2.api.Slots()
	if err != nil || s.Booted != "B" || s.Committed != "A" || s.Trial != "B" || s.Boots != 1 || s.Slots[1].Version != "v1.0.0" || !s.Slots[1].Running {
		t.Errorf("slots on the trial boot: %+v (%v)", s, err)
	}
	bt2.poweroff(t)
	t.Logf("API up %s after the image build; %.0f MB bundle installed in %s; trial boot of slot B: API up %s after QEMU started",
		toAPI.Round(time.Millisecond), float64(fileSize(bundleFile))/1e6, took.Round(time.Millisecond), toAPI2)
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
