package board

// qemuModules are the virtio devices and the watchdog QEMU gives the
// test boards.
func qemuModules() []string {
	return append(commonModules(), "virtio_net", "virtio_blk", "virtio-rng", "i6300esb")
}

// qemuAMD64 is QEMU's PC for tests: the kernel is the ELF inside
// Debian's bzImage, booted via PVH (no decompression under emulation,
// about 5 s to userspace).
func qemuAMD64() *Board {
	return &Board{
		Name:        "qemu-amd64",
		Description: "QEMU x86_64 (tests): PVH boot, virtio disk and NIC, i6300esb watchdog",
		GOARCH:      "amd64",
		Kernel: Kernel{
			Package: trixieAMD64(),
			Release: "6.12.107+deb13-amd64",
			Format:  "vmlinux-pvh",
		},
		Modules:  qemuModules(),
		Console:  []string{"console=ttyS0,115200"},
		NICs:     []string{"eth0"},
		Watchdog: "/dev/watchdog",
		Boot:     Boot{Method: Harness, Kernel: "vmlinux", Initrd: "initrd.img"},
		Layout:   Layout{BootMiB: 64, SlotMiB: 256, DataMiB: 64},
		QEMU: &QEMU{
			Binary: "qemu-system-x86_64", Package: "qemu-system-x86",
			Args:   []string{"-M", "pc", "-cpu", "max", "-m", "512", "-device", "i6300esb", "-device", "virtio-rng-pci"},
			NetDev: "virtio-net-pci",
		},
	}
}

// qemuARM64 is QEMU's virt machine with a Cortex-A57 for tests (about 6 s
// to userspace under emulation).
func qemuARM64() *Board {
	return &Board{
		Name:        "qemu-arm64",
		Description: "QEMU arm64 virt, Cortex-A57 (tests): virtio disk and NIC, i6300esb watchdog",
		GOARCH:      "arm64",
		Kernel: Kernel{
			Package: trixieARM64(),
			Release: "6.12.107+deb13-arm64",
			Format:  "Image",
		},
		Modules:  qemuModules(),
		Console:  []string{"console=ttyAMA0,115200"},
		NICs:     []string{"eth0"},
		Watchdog: "/dev/watchdog",
		Boot:     Boot{Method: Harness, Kernel: "vmlinuz", Initrd: "initrd.img"},
		Layout:   Layout{BootMiB: 64, SlotMiB: 256, DataMiB: 64},
		QEMU: &QEMU{
			Binary: "qemu-system-aarch64", Package: "qemu-system-arm",
			Args:   []string{"-M", "virt", "-cpu", "cortex-a57", "-m", "512", "-device", "i6300esb", "-device", "virtio-rng-pci"},
			NetDev: "virtio-net-pci",
		},
	}
}
