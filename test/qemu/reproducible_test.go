package qemu

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/image"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestReproducible builds the Pi image (boot firmware, device trees,
// arm64) and the atom64 image (GRUB's BIOS core image and EFI binaries,
// amd64) twice each, in different directories and at different times,
// and compares every artifact byte for byte.
func TestReproducible(t *testing.T) {
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		testenv.RequireTool(t, tool)
	}
	for _, name := range []string{"rpi", "atom64"} {
		t.Run(name, func(t *testing.T) {
			b, err := board.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			r1 := buildImage(t, b, t.TempDir())
			r2 := buildImage(t, b, t.TempDir())
			for _, pair := range [][2]string{{r1.Disk, r2.Disk}, {r1.Initrd, r2.Initrd}, {r1.Kernel, r2.Kernel}, {r1.Binary, r2.Binary}} {
				if fileSum(t, pair[0]) != fileSum(t, pair[1]) {
					t.Errorf("%s differs between two builds from the same inputs", filepath.Base(pair[0]))
				}
			}
			checkImage(t, b, r1)
		})
	}
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// checkImage looks at what the board's boot path needs on the disk.
func checkImage(t *testing.T, b *board.Board, r *image.Result) {
	t.Helper()
	im, err := OpenImage(r.Disk)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	need := map[int][]string{
		board.PartBoot:  {"provision/README.txt"},
		board.PartSlotA: {b.Boot.Kernel, b.Boot.Initrd, "cmdline.txt"},
	}
	switch b.Boot.Method {
	case board.Tryboot:
		need[board.PartBoot] = append(need[board.PartBoot], "autoboot.txt", "bootcode.bin", "config.txt")
		need[board.PartSlotA] = append(need[board.PartSlotA], "config.txt", "start.elf", "fixup.dat", "start4.elf", "fixup4.dat",
			"bcm2837-rpi-3-b.dtb", "bcm2711-rpi-4-b.dtb", "bcm2712-rpi-5-b.dtb")
	case board.GRUBEnv:
		need[board.PartBoot] = append(need[board.PartBoot], "grub/grub.cfg", "grub/grubenv", "EFI/BOOT/BOOTX64.EFI")
	}
	for part, files := range need {
		for _, f := range files {
			if !im.Exists(part, f) {
				t.Errorf("partition %d lacks %s", part, f)
			}
		}
	}
	if b.Boot.BIOS {
		raw := make([]byte, 1024)
		f, err := os.Open(r.Disk)
		if err != nil {
			t.Fatal(err)
		}
		f.ReadAt(raw, 0)
		f.Close()
		// boot.img's code and GRUB's diskboot.img right after the MBR.
		if raw[0] != 0xeb || raw[0x5c] != 1 || raw[510] != 0x55 {
			t.Errorf("no GRUB boot code in the MBR")
		}
	}
}
