package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// autobootTxt is partition 1's autoboot.txt for the Pi firmware (and the
// QEMU harness, which reads it the same way): slot A committed, slot B
// the one a tryboot reboot tries (package ota/slot owns the format).
func autobootTxt() []byte {
	a, _ := slot.AutobootFor(slot.A)
	return a.Marshal()
}

// provisionReadme tells whoever opens the boot partition on a laptop
// what to put where (docs/provisioning in firmware/pid1/README.md).
func provisionReadme() []byte {
	return []byte(strings.ReplaceAll(`Shoestring first-boot provisioning
==================================

Put the node's files in this "provision" folder before the first boot:

  node.yaml        the node config (reference: firmware/config/README.md)
  tailnet.authkey  the tailnet auth key for the management overlay
  *.zone           zone files the config names as /perm/config/NAME.zone

On boot, the box moves everything in this folder to its data partition
(/perm/config), deletes it here so no secret stays on this partition, and
writes provisioned.txt beside this folder listing what it took.
Files put here later are taken on the next boot the same way, replacing
the ones with the same name.
`, "\n", "\r\n"))
}

// piConfigTxt is a slot's config.txt: a 64-bit upstream kernel with its
// initramfs, serial console enabled. os_check=0 lets the Pi 5 firmware
// boot a kernel it does not recognise as Raspberry Pi OS.
func piConfigTxt(b *board.Board) []byte {
	return []byte(fmt.Sprintf(`# Shoestring. This slot's files are replaced whole by updates.
arm_64bit=1
enable_uart=1
upstream_kernel=1
os_check=0
disable_splash=1
kernel=%s
initramfs %s followkernel
`, b.Boot.Kernel, b.Boot.Initrd))
}

// bootFiles returns what partition 1 and slot A hold for the board.
func bootFiles(ctx context.Context, b *board.Board, k *kernelTree, debs map[string]string, kernel, initrd []byte, cache string, g *grubTools) (boot, slot map[string][]byte, mbrCode, gap []byte, err error) {
	boot = map[string][]byte{"provision/README.txt": provisionReadme()}
	slot = map[string][]byte{
		b.Boot.Kernel: kernel,
		b.Boot.Initrd: initrd,
		// The slot's command line. The Pi firmware reads it; the harness
		// and GRUB's config are made from the same text.
		"cmdline.txt": []byte(b.KernelCmdline("A", b.DiskID()) + "\n"),
	}
	switch b.Boot.Method {
	case board.Harness:
		boot["autoboot.txt"] = autobootTxt()
	case board.Tryboot:
		boot["autoboot.txt"] = autobootTxt()
		// The Pi 3's boot ROM runs bootcode.bin from partition 1 only, and
		// wants a config.txt there to call the partition bootable.
		boot["config.txt"] = []byte("# Shoestring: the firmware boots the slot autoboot.txt names.\n")
		fw, err := raspiFirmware(ctx, debs["raspi-firmware"], cache)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		boot["bootcode.bin"] = fw["bootcode.bin"]
		for _, f := range []string{"start.elf", "fixup.dat", "start4.elf", "fixup4.dat"} {
			if fw[f] == nil {
				return nil, nil, nil, nil, fmt.Errorf("raspi-firmware has no %s", f)
			}
			slot[f] = fw[f]
		}
		slot["config.txt"] = piConfigTxt(b)
		dtbs, err := dtbFiles(k, b.Kernel.DTBs)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		for _, d := range dtbs {
			data, err := os.ReadFile(filepath.Join(k.dtbs(), d))
			if err != nil {
				return nil, nil, nil, nil, err
			}
			// The firmware looks for the device tree next to the kernel.
			slot[filepath.Base(d)] = data
		}
	case board.GRUBEnv:
		boot, mbrCode, gap, err = g.bootPartition(b, boot)
		if err != nil {
			return nil, nil, nil, nil, err
		}
	default:
		return nil, nil, nil, nil, fmt.Errorf("board %s: unknown boot method %q", b.Name, b.Boot.Method)
	}
	return boot, slot, mbrCode, gap, nil
}

// raspiFirmware extracts the Pi boot firmware once into the cache.
func raspiFirmware(ctx context.Context, deb, cache string) (map[string][]byte, error) {
	dir := filepath.Join(cache, "raspi-firmware", strings.TrimSuffix(filepath.Base(deb), ".deb"))
	if _, err := os.Stat(filepath.Join(dir, "bootcode.bin")); err != nil {
		if _, err := extractDeb(ctx, deb, dir, func(name string) (string, bool) {
			rest, ok := strings.CutPrefix(name, "usr/lib/raspi-firmware/")
			return rest, ok && !strings.Contains(rest, "/")
		}); err != nil {
			return nil, err
		}
	}
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[e.Name()] = b
	}
	return out, nil
}
