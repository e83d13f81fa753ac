package board

// pcModules are the storage and USB drivers every PC board carries.
func pcModules() []string {
	return append(commonModules(),
		"ahci", "ata_piix", "sd_mod", "sdhci-pci", "sdhci-acpi", "mmc_block",
		"ehci-pci", "xhci-pci", "usb-storage", "uas",
		// USB NICs: the usual rescue when the onboard one is not driven.
		"r8152", "ax88179_178a",
		// Watchdogs: Intel TCO behind the LPC bridge, the 6300ESB's (also
		// QEMU's), AMD's SP5100 TCO.
		"lpc_ich", "iTCO_wdt", "i6300esb")
}

// atom386 is the old 32-bit Atom (FitPC2i, netbook boards: Z5xx, N270):
// BIOS only, so GRUB's BIOS image; the last Debian i386 kernel.
func atom386() *Board {
	return &Board{
		Name:        "atom386",
		Description: "32-bit Atom PCs (FitPC2i, N270/Z5xx boards), BIOS",
		GOARCH:      "386",
		// Every Atom has SSE2.
		GO386: "sse2",
		Kernel: Kernel{
			Package: bookworm686(),
			Release: "6.1.0-50-686",
			Format:  "bzImage",
		},
		Packages: grubPackages("i386-pc"),
		Modules: append(pcModules(),
			// The US15W (Z5xx) PATA controller, and the NICs of that era.
			"pata_sch", "r8169", "e1000", "e1000e", "e100", "atl1c", "sky2", "8139too",
			// QEMU's pc (the optional BIOS boot test): PIIX IDE, e1000.
			"ata_generic"),
		Console:  []string{"console=tty0", "console=ttyS0,115200"},
		NICs:     []string{"eth0"},
		Watchdog: "/dev/watchdog",
		Boot:     Boot{Method: GRUBEnv, BIOS: true, Kernel: "vmlinuz", Initrd: "initrd.img"},
		Layout:   Layout{BootMiB: 64, SlotMiB: 256, DataMiB: 64},
		QEMU: &QEMU{
			// Optional and slower: BIOS, GRUB, a decompressing bzImage.
			Binary: "qemu-system-i386", Package: "qemu-system-x86",
			Args: []string{"-M", "pc", "-cpu", "n270", "-m", "512", "-device", "i6300esb"}, NetDev: "e1000", DiskIf: "ide", Firmware: true,
		},
	}
}

// atom64 is a 64-bit Atom/Celeron box (Bay Trail and later, J/N series):
// UEFI, some with 32-bit UEFI on a 64-bit CPU, some BIOS; GRUB for all
// three from the same disk.
func atom64() *Board {
	return &Board{
		Name:        "atom64",
		Description: "64-bit Atom/Celeron PCs (Bay Trail and later), UEFI (64 or 32-bit) or BIOS",
		GOARCH:      "amd64",
		Kernel: Kernel{
			Package: trixieAMD64(),
			Release: "6.12.107+deb13-amd64",
			Format:  "bzImage",
		},
		Packages: grubPackages("i386-pc", "x86_64-efi", "i386-efi"),
		Modules:  append(pcModules(), "nvme", "r8169", "igb", "igc", "e1000e", "sp5100_tco"),
		Console:  []string{"console=tty0", "console=ttyS0,115200"},
		NICs:     []string{"eth0"},
		Watchdog: "/dev/watchdog",
		Boot:     Boot{Method: GRUBEnv, BIOS: true, EFI: []string{"x86_64-efi", "i386-efi"}, Kernel: "vmlinuz", Initrd: "initrd.img"},
		Layout:   Layout{BootMiB: 64, SlotMiB: 256, DataMiB: 64},
		QEMU: &QEMU{
			// SeaBIOS, GRUB from the MBR gap, a decompressing bzImage; an
			// e1000e NIC and a SATA disk on AHCI, as the boxes have (GRUB
			// reads kernel and initramfs through SeaBIOS by DMA: about a
			// second under emulation, where IDE takes ten).
			Binary: "qemu-system-x86_64", Package: "qemu-system-x86",
			Args: []string{"-M", "pc", "-cpu", "max", "-m", "512", "-device", "i6300esb"}, NetDev: "e1000e", DiskIf: "ahci", Firmware: true,
		},
	}
}
