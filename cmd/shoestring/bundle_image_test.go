package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// writeSlotImage writes a small MBR disk image whose partition 2 (slot
// A) is FAT32 holding files, as the image builder lays it out.
func writeSlotImage(t *testing.T, p string, files map[string][]byte) {
	t.Helper()
	const sector, mib = 512, 1 << 20 / 512
	ps := []*mbr.Partition{
		{Index: 1, Type: mbr.Fat32LBA, Start: 2048, Size: 8 * mib},
		{Index: 2, Type: mbr.Fat32LBA, Start: 2048 + 8*mib, Size: 40 * mib},
	}
	size := int64(2048+48*mib) * sector
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	b := file.New(f, false)
	w, err := b.Writable()
	if err != nil {
		t.Fatal(err)
	}
	if err := (&mbr.Table{Partitions: ps, LogicalSectorSize: sector, PhysicalSectorSize: sector}).Write(w, size); err != nil {
		t.Fatal(err)
	}
	fs, err := fat32.Create(b, int64(ps[1].Size)*sector, int64(ps[1].Start)*sector, sector, "SLOT-A", true)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		fh, err := fs.OpenFile("/"+name, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fh.Write(data); err != nil {
			t.Fatal(err)
		}
		fh.Close()
	}
}

// TestBundleBootFilesFromImage: the Pi slot's further files are taken
// from the image's slot A, all but kernel, initramfs and cmdline.txt, and
// the kernel given must be the image's.
func TestBundleBootFilesFromImage(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, 0, "keygen", "-out", dir)
	kernel, initrd := bytes.Repeat([]byte("K"), 70000), bytes.Repeat([]byte("I"), 50000)
	slot := map[string][]byte{
		"vmlinuz": kernel, "initrd.img": initrd,
		"cmdline.txt":              []byte("console=ttyS1 shoestring.slot=A\n"),
		"config.txt":               []byte("arm_64bit=1\n"),
		"start4.elf":               bytes.Repeat([]byte("F"), 30000),
		"bcm2711-rpi-4-b.dtb":      []byte("dtb4"),
		"bcm2837-rpi-3-b-plus.dtb": []byte("dtb3"),
	}
	img := filepath.Join(dir, "shoestring-rpi.img")
	writeSlotImage(t, img, slot)
	kf, inf := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	os.WriteFile(kf, kernel, 0o644)
	os.WriteFile(inf, initrd, 0o644)
	b := filepath.Join(dir, "x.bundle")
	mustRun(t, 0, "create", "-key", filepath.Join(dir, "shoestring.key"), "-board", "rpi", "-version", "v1.0.0",
		"-kernel", kf, "-initramfs", inf, "-boot-files-from", img, "-out", b)
	out := mustRun(t, 0, "info", b)
	for _, want := range []string{"kernel     vmlinuz", "initramfs  initrd.img", "boot       config.txt", "start4.elf", "bcm2711-rpi-4-b.dtb", "bcm2837-rpi-3-b-plus.dtb"} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cmdline.txt") {
		t.Errorf("cmdline.txt (slot-specific) in the bundle:\n%s", out)
	}
	mustRun(t, 0, "verify", "-key", filepath.Join(dir, "shoestring.pub"), "-board", "rpi", b)
	// A kernel other than the image's is refused.
	os.WriteFile(kf, append(kernel, 'x'), 0o644)
	if out := mustRun(t, 1, "create", "-key", filepath.Join(dir, "shoestring.key"), "-board", "rpi", "-version", "v1.0.0",
		"-kernel", kf, "-initramfs", inf, "-boot-files-from", img, "-out", b+"2"); !strings.Contains(out, "different builds") {
		t.Errorf("mismatched kernel: %s", out)
	}
}
