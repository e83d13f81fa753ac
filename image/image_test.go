package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

func sum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func testSpec() *diskSpec {
	return &diskSpec{
		layout: board.Layout{BootMiB: 40, SlotMiB: 40, DataMiB: 8},
		diskID: 0x2dee6dcd,
		epoch:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		boot:   map[string][]byte{"autoboot.txt": autobootTxt(), "provision/README.txt": provisionReadme(), "grub/grubenv": mustEnv("slot", "A")},
		slotA:  map[string][]byte{"vmlinuz": bytes.Repeat([]byte("kernel"), 100000), "initrd.img": []byte("initrd"), "cmdline.txt": []byte("console=ttyS0\n")},
		slotB:  map[string][]byte{},
	}
}

// TestDiskReproducible writes the same disk twice, at different wall
// clock times, and reads it back as an operator's laptop would.
func TestDiskReproducible(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	if _, err := writeDisk(a, testSpec()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // FAT times have 2 s resolution; make a wall-clock leak show
	if _, err := writeDisk(b, testSpec()); err != nil {
		t.Fatal(err)
	}
	if sum(t, a) != sum(t, b) {
		t.Fatal("same inputs, different disk images")
	}
	raw, _ := os.ReadFile(a)
	if binary.LittleEndian.Uint32(raw[440:]) != 0x2dee6dcd || raw[510] != 0x55 || raw[511] != 0xaa {
		t.Fatal("MBR signature or disk ID missing")
	}
	d, err := diskfs.Open(a, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for part, files := range map[int]map[string][]byte{1: testSpec().boot, 2: testSpec().slotA} {
		fs, err := d.GetFilesystem(part)
		if err != nil {
			t.Fatalf("partition %d: %v", part, err)
		}
		for name, want := range files {
			f, err := fs.OpenFile("/"+name, os.O_RDONLY)
			if err != nil {
				t.Fatalf("partition %d: %s: %v", part, name, err)
			}
			got, _ := io.ReadAll(f)
			f.Close()
			if !bytes.Equal(got, want) {
				t.Fatalf("partition %d: %s differs", part, name)
			}
		}
	}
	// The data partition is left zeroed for PID 1 to make on first boot.
	ps := partitions(testSpec().layout)
	data := raw[int64(ps[3].Start)*512:]
	if len(data) != 8<<20 || bytes.Count(data[:64<<10], []byte{0}) != 64<<10 {
		t.Fatalf("data partition: %d bytes, not zero", len(data))
	}
}

func TestInitramfsReproducible(t *testing.T) {
	build := func() []byte {
		r := newInitramfs()
		r.base([]byte("\x7fELF binary"), []byte(`{"name":"test"}`))
		r.file("lib/modules/6.12/kernel/fs/ext4/ext4.ko", []byte("module"), 0o644)
		raw, err := r.cpio()
		if err != nil {
			t.Fatal(err)
		}
		z, err := compressInitramfs(raw)
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	a := build()
	if !bytes.Equal(a, build()) {
		t.Fatal("same files, different initramfs")
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := dec.DecodeAll(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cpio.Record{}
	var order []string
	for _, r := range recs {
		got[r.Name] = r
		order = append(order, r.Name)
	}
	init, ok := got["init"]
	if !ok || init.Mode&0o777 != 0o755 {
		t.Fatalf("no executable /init: %v", order)
	}
	if c := got["dev/console"]; c.Mode&cpio.S_IFMT != cpio.S_IFCHR || c.Rmajor != 5 || c.Rminor != 1 {
		t.Fatalf("/dev/console: %+v", c.Info)
	}
	if l := got["sbin/modprobe"]; l.Mode&cpio.S_IFMT != cpio.S_IFLNK {
		t.Fatalf("/sbin/modprobe is not a link")
	}
	// Parents come before their entries.
	seen := map[string]bool{}
	for _, n := range order {
		if d := filepath.Dir(n); d != "." && !seen[d] {
			t.Fatalf("%s before its directory", n)
		}
		seen[n] = true
	}
	for _, r := range recs {
		if r.MTime != 0 || r.UID != 0 {
			t.Fatalf("%s: mtime %d uid %d", r.Name, r.MTime, r.UID)
		}
	}
}

func TestEmbedGRUB(t *testing.T) {
	boot := make([]byte, 512)
	for i := range boot {
		boot[i] = byte(i)
	}
	core := make([]byte, 100*512+17)
	binary.LittleEndian.PutUint64(core[512-12:], 2)
	binary.LittleEndian.PutUint16(core[512-2:], 0x820)
	mbr, gap, err := embedGRUB(boot, core)
	if err != nil {
		t.Fatal(err)
	}
	if len(mbr) != 440 || binary.LittleEndian.Uint64(mbr[0x5c:]) != 1 || mbr[0x66] != 0x90 || mbr[0x67] != 0x90 || mbr[0x10] != 0 {
		t.Fatalf("boot code not patched: kernel sector %d", binary.LittleEndian.Uint64(mbr[0x5c:]))
	}
	if len(gap) != 101*512 || binary.LittleEndian.Uint64(gap[500:]) != 2 || binary.LittleEndian.Uint16(gap[508:]) != 100 {
		t.Fatalf("block list: start %d len %d", binary.LittleEndian.Uint64(gap[500:]), binary.LittleEndian.Uint16(gap[508:]))
	}
	// An image GRUB laid out differently is refused, not mis-patched.
	binary.LittleEndian.PutUint16(core[510:], 0x1000)
	if _, _, err := embedGRUB(boot, core); err == nil {
		t.Fatal("unexpected core.img accepted")
	}
}

func mustEnv(kv ...string) []byte {
	b, err := slot.GRUBEnv(kv...)
	if err != nil {
		panic(err)
	}
	return b
}

// TestGRUBCfg checks grub.cfg, including the lines whose meaning package
// ota/slot relies on when it reads and writes grubenv.
func TestGRUBCfg(t *testing.T) {
	b, _ := board.Get("brix")
	cfg := string(grubCfg(b))
	for _, want := range []string{
		"load_env\n",
		`if [ "$slot" != "B" ]; then set slot=A; fi`,
		"if [ -n \"$try_slot\" ]; then\n  set boot_slot=\"$try_slot\"\n  set try_slot=\n  save_env try_slot\n",
		`if [ "$boot_slot" != "B" ]; then set boot_slot=A; fi`, "--id slot-A", "--id slot-B", "($disk,msdos2)/vmlinuz", "($disk,msdos3)/initrd.img", "shoestring.slot=B"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("grub.cfg lacks %q", want)
		}
	}
}

func TestVmlinuxRejectsGarbage(t *testing.T) {
	if _, err := vmlinuxFromBzImage(make([]byte, 4096)); err == nil {
		t.Fatal("not a bzImage, accepted")
	}
}
