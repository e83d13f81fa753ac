package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// grubTools is GRUB unpacked from the pinned packages: grub-mkimage and
// the module trees of each platform.
type grubTools struct {
	ctx context.Context
	dir string // cache directory holding usr/bin and usr/lib/grub
}

// unpackGRUB extracts the GRUB packages once into the cache.
func unpackGRUB(ctx context.Context, cache string, pkgs []board.Package, debs map[string]string, pr *progress) (*grubTools, error) {
	var key []string
	for _, p := range pkgs {
		if strings.HasPrefix(p.Name, "grub-") {
			key = append(key, p.Name+"_"+p.Version)
		}
	}
	if len(key) == 0 {
		return nil, nil
	}
	dir := filepath.Join(cache, "grub", strings.Join(key, "+"))
	g := &grubTools{ctx: ctx, dir: dir}
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return g, nil
	}
	pr.step("unpacking GRUB %s", pkgs[0].Version)
	for _, p := range pkgs {
		if !strings.HasPrefix(p.Name, "grub-") {
			continue
		}
		if _, err := extractDeb(ctx, debs[p.Name], dir, func(name string) (string, bool) {
			return name, name == "usr/bin/grub-mkimage" || strings.HasPrefix(name, "usr/lib/grub/")
		}); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "usr/bin/grub-mkimage"), 0o755); err != nil {
		return nil, err
	}
	return g, os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644)
}

// grubModules are built into every core image, so that partition 1 needs
// no module directory.
func grubModules(platform string) []string {
	m := []string{"part_msdos", "fat", "normal", "configfile", "loadenv", "test", "regexp", "echo", "linux", "serial", "terminal", "sleep", "reboot", "halt"}
	if platform == "i386-pc" {
		return append(m, "biosdisk")
	}
	return append(m, "efi_gop", "efi_uga")
}

// mkimage runs grub-mkimage for a platform.
func (g *grubTools) mkimage(platform, prefix string) ([]byte, error) {
	out := filepath.Join(g.dir, "core-"+platform+".img")
	args := append([]string{"-d", filepath.Join(g.dir, "usr/lib/grub", platform), "-O", platform, "-o", out, "-p", prefix}, grubModules(platform)...)
	cmd := exec.CommandContext(g.ctx, filepath.Join(g.dir, "usr/bin/grub-mkimage"), args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("grub-mkimage -O %s: %v\n%s", platform, err, b)
	}
	return os.ReadFile(out)
}

// bootPartition adds GRUB to partition 1: grub/grub.cfg, grub/grubenv,
// EFI/BOOT/BOOT{X64,IA32}.EFI, and for BIOS the MBR code and the core
// image for the gap before partition 1.
func (g *grubTools) bootPartition(b *board.Board, files map[string][]byte) (map[string][]byte, []byte, []byte, error) {
	if g == nil {
		return nil, nil, nil, fmt.Errorf("board %s boots with GRUB but names no GRUB packages", b.Name)
	}
	files["grub/grub.cfg"] = grubCfg(b)
	env, err := slot.GRUBEnv("slot", slot.A)
	if err != nil {
		return nil, nil, nil, err
	}
	files["grub/grubenv"] = env
	for _, p := range b.Boot.EFI {
		img, err := g.mkimage(p, "/grub")
		if err != nil {
			return nil, nil, nil, err
		}
		name := map[string]string{"x86_64-efi": "BOOTX64.EFI", "i386-efi": "BOOTIA32.EFI"}[p]
		if name == "" {
			return nil, nil, nil, fmt.Errorf("no EFI file name for GRUB platform %s", p)
		}
		files["EFI/BOOT/"+name] = img
	}
	if !b.Boot.BIOS {
		return files, nil, nil, nil
	}
	// "(,msdos1)" is partition 1 of the disk the BIOS booted from.
	core, err := g.mkimage("i386-pc", "(,msdos1)/grub")
	if err != nil {
		return nil, nil, nil, err
	}
	bootImg, err := os.ReadFile(filepath.Join(g.dir, "usr/lib/grub/i386-pc/boot.img"))
	if err != nil {
		return nil, nil, nil, err
	}
	mbrCode, gap, err := embedGRUB(bootImg, core)
	return files, mbrCode, gap, err
}

// embedGRUB does what grub-bios-setup does for a core image embedded
// right after the MBR (sector 1 on): boot.img learns the core image's
// first sector, the core image's first sector (diskboot) gets the block
// list of the rest, and the "drive check" jump is turned into no-ops for
// BIOSes that pass a wrong boot drive for hard disks.
func embedGRUB(bootImg, core []byte) (mbrCode, gap []byte, err error) {
	const (
		kernelSector = 0x5c // GRUB_BOOT_MACHINE_KERNEL_SECTOR
		driveCheck   = 0x66 // GRUB_BOOT_MACHINE_DRIVE_CHECK
		mbrCodeLen   = 440
		blockSize    = 12 // struct grub_boot_blocklist: start u64, len u16, segment u16
	)
	if len(bootImg) != sector {
		return nil, nil, fmt.Errorf("boot.img is %d bytes, want 512", len(bootImg))
	}
	if len(core) < 2*sector {
		return nil, nil, fmt.Errorf("core.img too small (%d bytes)", len(core))
	}
	mbrCode = append([]byte(nil), bootImg[:mbrCodeLen]...)
	// The BIOS parameter block area stays zero on a partitioned disk.
	for i := 0x3; i < 0x5a; i++ {
		mbrCode[i] = 0
	}
	binary.LittleEndian.PutUint64(mbrCode[kernelSector:], 1)
	mbrCode[driveCheck], mbrCode[driveCheck+1] = 0x90, 0x90

	nsec := (len(core) + sector - 1) / sector
	gap = make([]byte, nsec*sector)
	copy(gap, core)
	first := sector - blockSize
	// The default block list (start 2, segment 0x820) is what an image
	// fresh from grub-mkimage carries; check it rather than trust it.
	if seg := binary.LittleEndian.Uint16(gap[first+10:]); seg != 0x820 {
		return nil, nil, fmt.Errorf("core.img diskboot block list segment %#x, want 0x820 (GRUB changed?)", seg)
	}
	binary.LittleEndian.PutUint64(gap[first:], 2)
	binary.LittleEndian.PutUint16(gap[first+8:], uint16(nsec-1))
	// The entry below ends the list.
	if !bytes.Equal(gap[first-blockSize:first], make([]byte, blockSize)) {
		return nil, nil, fmt.Errorf("core.img has a second block list entry")
	}
	return mbrCode, gap, nil
}

// grubCfg chooses the slot: try_slot once if set (cleared before booting
// it, so a reset falls back), otherwise the committed slot. Package
// ota/slot owns grubenv and reads and writes it by these rules.
func grubCfg(b *board.Board) []byte {
	var s strings.Builder
	fmt.Fprintf(&s, `# Shoestring: A/B boot (board %[1]s). Slots are partitions 2 (A) and 3 (B)
# of this disk; grubenv holds slot= (committed) and try_slot= (boot once).
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=1
load_env
if [ "$slot" != "B" ]; then set slot=A; fi
if [ -n "$try_slot" ]; then
  set boot_slot="$try_slot"
  set try_slot=
  save_env try_slot
  # A trial slot that does not even load falls back at once.
  set fallback="slot-$slot"
else
  set boot_slot="$slot"
fi
if [ "$boot_slot" != "B" ]; then set boot_slot=A; fi
regexp --set=1:disk '^([^,]*),' "$root"
# A slot without its kernel and initramfs is not tried: a failed boot
# would stop at GRUB's "press any key" with nobody there to press it.
if [ "$boot_slot" = "B" ]; then set part=msdos%[2]d; else set part=msdos%[3]d; fi
if [ ! -f "($disk,$part)/%[4]s" -o ! -f "($disk,$part)/%[5]s" ]; then
  echo "Shoestring: slot $boot_slot is empty; booting slot $slot"
  set boot_slot="$slot"
fi
set default="slot-$boot_slot"
`, b.Name, board.PartSlotB, board.PartSlotA, b.Boot.Kernel, b.Boot.Initrd)
	for _, slot := range []string{"A", "B"} {
		part, _ := board.SlotPartition(slot)
		fmt.Fprintf(&s, `menuentry "Shoestring slot %[1]s" --id slot-%[1]s {
  echo "Shoestring: booting slot %[1]s"
  linux ($disk,msdos%[2]d)/%[3]s %[4]s
  initrd ($disk,msdos%[2]d)/%[5]s
}
`, slot, part, b.Boot.Kernel, b.KernelCmdline(slot, b.DiskID()), b.Boot.Initrd)
	}
	return []byte(s.String())
}
