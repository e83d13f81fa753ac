// Package board describes every box Shoestring runs on: the Go
// architecture, the pinned Debian kernel and the modules taken from it,
// the console, the NICs and watchdog PID 1 waits for, the disk layout and
// how the A/B switch is done. The image builder (image/) reads all of it;
// PID 1 gets the part it needs at run time (Runtime) as a JSON file in the
// initramfs; the OTA agent uses Boot to switch slots.
//
// Definitions are returned fresh by each call (no package-level mutable
// state), one file per family: rpi.go, atom.go, brix.go, qemu.go.
package board

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
)

// Board is one supported box.
type Board struct {
	Name        string
	Description string

	// GOARCH and, for 386, GO386 ("sse2" or "softfloat") for the cross
	// build of the firmware binary.
	GOARCH string
	GO386  string

	// Kernel is the Debian kernel package the board boots.
	Kernel Kernel
	// Packages are further Debian packages the image needs files from
	// (raspi-firmware, GRUB), pinned like the kernel.
	Packages []Package

	// Modules names the kernel modules the initramfs carries (their
	// dependencies are added): a module name ("virtio_net") or a
	// directory under the kernel's module tree ending in "/"
	// ("kernel/drivers/net/ethernet/intel/") for every module in it.
	// PID 1 loads a module only when a device's modalias asks for it or
	// it is in Runtime.Load.
	Modules []string

	// Console is the kernel console argument list, last one being
	// /dev/console ("console=ttyS0,115200").
	Console []string
	// Cmdline is the rest of the kernel command line.
	Cmdline []string

	// NICs are the interfaces PID 1 waits for (rescanning modaliases)
	// unless the node config names its own.
	NICs []string
	// Watchdog is the hardware watchdog device (its driver is among
	// Modules and loads by modalias).
	Watchdog string

	// Boot is how the board boots and switches between slots A and B.
	Boot Boot
	// Layout is the disk layout.
	Layout Layout

	// QEMU, when set, says how to boot the board's image under QEMU
	// (test/qemu and make qemu).
	QEMU *QEMU
}

// Kernel is a pinned Debian kernel package.
type Kernel struct {
	Package
	// Release is the kernel release (uname -r), the modules directory.
	Release string
	// Format is what the boot loader is given: "bzImage" (x86 as
	// shipped), "Image" (arm64 as shipped) or "vmlinux-pvh" (the ELF
	// inside the bzImage, which QEMU boots via PVH without decompressing
	// under emulation).
	Format string
	// DTBs are device trees copied next to the kernel (Pi), as paths
	// under /usr/lib/linux-image-RELEASE/.
	DTBs []string
}

// Package is a Debian package pinned to a version and the SHA-256 of its
// .deb, fetched with apt-get download from Suite.
type Package struct {
	Name    string
	Version string
	Arch    string // amd64, arm64, i386 or all
	Suite   string // bookworm, trixie
	SHA256  string
}

// Deb is the file name apt-get download writes.
func (p Package) Deb() string {
	v := strings.ReplaceAll(p.Version, ":", "%3a")
	return fmt.Sprintf("%s_%s_%s.deb", p.Name, v, p.Arch)
}

// Spec is the apt-get argument selecting exactly this package.
func (p Package) Spec() string {
	return fmt.Sprintf("%s:%s=%s", p.Name, p.Arch, p.Version)
}

// BootMethod names how a board chooses between slot A and slot B.
// Package ota/slot reads and writes each method's state (and adds
// binary slots for a plain Linux host).
type BootMethod string

const (
	// Tryboot is the Raspberry Pi firmware's: autoboot.txt on partition 1
	// says `tryboot_a_b=1` with `boot_partition=N` under [all] (the
	// committed slot) and under [tryboot] (the slot to try). Trying the
	// other slot once is `reboot "0 tryboot"` (reboot(2) RESTART2 with
	// that argument; the firmware driver passes the flag over the
	// mailbox), which the firmware clears as it boots, so any reset goes
	// back to the committed slot. Committing rewrites [all].
	Tryboot BootMethod = "tryboot"
	// GRUBEnv is for PCs: GRUB (BIOS core image in the MBR gap, and EFI
	// binaries on partition 1) reads grub/grubenv: `slot=A|B` is the
	// committed slot, `try_slot=A|B` a slot to boot once. grub.cfg clears
	// try_slot with save_env before booting it, so a failed try falls
	// back to slot on the next reset. Committing sets slot.
	GRUBEnv BootMethod = "grubenv"
	// Harness is for the QEMU boards, whose "firmware" is the test
	// harness booting kernel and initramfs of a slot directly: it reads
	// autoboot.txt exactly as the Pi firmware does, and the one-shot
	// tryboot flag is a file named "tryboot" on partition 1 that the
	// harness deletes before it boots the [tryboot] slot.
	Harness BootMethod = "harness"
)

// Boot says how a board boots.
type Boot struct {
	Method BootMethod
	// BIOS and EFI, for GRUB boards: install the BIOS core image into the
	// MBR gap, and the EFI binaries (x86_64, and ia32 for 64-bit Atoms
	// with 32-bit UEFI) into EFI/BOOT on partition 1.
	BIOS   bool
	EFI    []string // GRUB EFI platforms: "x86_64-efi", "i386-efi"
	Kernel string   // kernel file name inside a slot
	Initrd string   // initramfs file name inside a slot
}

// Layout is the disk layout, MBR on every board (the Pi 3 and BIOS PCs
// need it; UEFI takes it): partition 1 is the boot partition (FAT32: Pi
// autoboot.txt and bootcode.bin, or GRUB, and the provisioning folder),
// 2 and 3 are slots A and B (FAT32, each a kernel and initramfs, and on
// the Pi the firmware, config.txt and cmdline.txt), 4 is the data
// partition (ext4, made by PID 1 on first boot to fill the disk).
type Layout struct {
	BootMiB int
	SlotMiB int
	DataMiB int // in the image; PID 1 grows it to the end of the disk
}

// Partition numbers, the same on every board.
const (
	PartBoot  = 1
	PartSlotA = 2
	PartSlotB = 3
	PartData  = 4
)

// SlotPartition returns the partition of slot "A" or "B".
func SlotPartition(slot string) (int, error) {
	switch slot {
	case "A":
		return PartSlotA, nil
	case "B":
		return PartSlotB, nil
	}
	return 0, fmt.Errorf("no slot %q (want A or B)", slot)
}

// QEMU says how to boot a board's image under QEMU (software emulation).
type QEMU struct {
	Binary  string   // qemu-system-x86_64
	Args    []string // machine, CPU, memory, devices other than disk and NIC
	NetDev  string   // NIC model for -device (virtio-net-pci)
	DiskIf  string   // -drive if= (default virtio), or "ahci": a SATA disk on an AHCI controller
	Package string   // Debian package providing Binary
	// Firmware boots the disk through its own boot loader (GRUB from
	// SeaBIOS) instead of the harness loading a slot's kernel.
	Firmware bool
}

// Runtime is what PID 1 needs to know about its board, written by the
// image builder to /etc/shoestring/board.json in the initramfs.
type Runtime struct {
	Name     string     `json:"name"`
	Kernel   string     `json:"kernel"` // release, for the modules directory
	NICs     []string   `json:"nics"`
	Watchdog string     `json:"watchdog"`
	Boot     BootMethod `json:"boot"`
	// Load are modules loaded at boot whatever the devices (filesystems,
	// watchdogs that have no modalias match).
	Load []string `json:"load"`
	// BuildTime is the image's SOURCE_DATE_EPOCH: the clock is never set
	// earlier than this.
	BuildTime int64 `json:"build_time"`
	// Version is the firmware version the image was built as.
	Version string `json:"version"`
}

// Runtime returns the board's run-time description.
func (b *Board) Runtime(version string, buildTime int64) Runtime {
	return Runtime{
		Name:      b.Name,
		Kernel:    b.Kernel.Release,
		NICs:      b.NICs,
		Watchdog:  b.Watchdog,
		Boot:      b.Boot.Method,
		Load:      alwaysLoad(),
		BuildTime: buildTime,
		Version:   version,
	}
}

// alwaysLoad are the modules no device asks for by modalias: the data
// and boot filesystems (and the code page the FAT driver mounts with).
func alwaysLoad() []string {
	return []string{"ext4", "vfat", "nls_cp437", "nls_ascii"}
}

// commonModules are in every initramfs: filesystems for the data and
// boot partitions, and what ext4 checksums with.
func commonModules() []string {
	return append(alwaysLoad(), "crc32c_generic", "nls_iso8859_1",
		// Not loaded at boot, but there for the kernel's own requests
		// (request_module → /sbin/modprobe): vishvananda/netlink's default
		// handle opens NETLINK_XFRM and NETLINK_NETFILTER sockets, which
		// fail with "protocol not supported" unless these can load.
		"xfrm_user", "nfnetlink")
}

// All returns every board, sorted by name.
func All() []*Board {
	bs := []*Board{rpi(), atom386(), atom64(), brix(), qemuAMD64(), qemuARM64()}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name < bs[j].Name })
	return bs
}

// Names lists the board names.
func Names() []string {
	var ns []string
	for _, b := range All() {
		ns = append(ns, b.Name)
	}
	return ns
}

// Get returns the named board.
func Get(name string) (*Board, error) {
	for _, b := range All() {
		if b.Name == name {
			return b, nil
		}
	}
	return nil, fmt.Errorf("no board %q (boards: %s)", name, strings.Join(Names(), ", "))
}

// DiskID is the MBR disk signature of the board's images, derived from
// the board name so that builds are reproducible; PID 1 finds its disk by
// it (shoestring.disk= on the kernel command line) whatever the kernel
// calls the disk (mmcblk0, sda, nvme0n1, vda).
func (b *Board) DiskID() uint32 {
	h := fnv.New32a()
	h.Write([]byte("shoestring/" + b.Name))
	return h.Sum32()
}

// KernelCmdline is the kernel command line for a slot: console, the
// board's arguments, which slot this is and how to find the disk.
// panic=10 reboots a box whose PID 1 dies instead of leaving it hung.
func (b *Board) KernelCmdline(slot string, diskID uint32) string {
	args := append([]string{}, b.Console...)
	args = append(args, b.Cmdline...)
	args = append(args, "panic=10", fmt.Sprintf("shoestring.slot=%s", slot), fmt.Sprintf("shoestring.disk=%08x", diskID))
	return strings.Join(args, " ")
}
