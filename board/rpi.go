package board

// rpi is the Raspberry Pi 3, 4 and 5 in 64-bit mode, on Debian's arm64
// kernel with the upstream device trees. The Pi firmware loads kernel and
// initramfs from the slot partition autoboot.txt names (see Tryboot).
//
// Pi 5: the kernel boots and serves, but its Ethernet sits behind the RP1
// chip, which Linux 6.12 does not drive yet; use a USB NIC (r8152,
// ax88179_178a are included) until the kernel pin moves past 6.15.
func rpi() *Board {
	return &Board{
		Name:        "rpi",
		Description: "Raspberry Pi 3, 4, 5 (arm64)",
		GOARCH:      "arm64",
		Kernel: Kernel{
			Package: trixieARM64(),
			Release: "6.12.107+deb13-arm64",
			Format:  "Image",
			DTBs:    []string{"broadcom/bcm2837-rpi-*.dtb", "broadcom/bcm2711-rpi-*.dtb", "broadcom/bcm2712-rpi-*.dtb"},
		},
		Packages: []Package{raspiFirmware()},
		Modules: append(commonModules(),
			// SD card and eMMC: sdhost (Pi 3) and the iProc SDHCI (Pi 3
			// EMMC, Pi 4 EMMC2).
			"bcm2835", "sdhci-iproc",
			// NICs: GENET (Pi 4), SMSC95xx (Pi 3B), LAN78xx (Pi 3B+), and
			// common USB adapters.
			"genet", "mdio-bcm-unimac", "broadcom", "smsc95xx", "lan78xx", "r8152", "ax88179_178a",
			// USB: DWC2 (Pi 3), the VL805 behind PCIe (Pi 4), storage.
			"dwc2", "xhci-pci", "reset-raspberrypi", "usb-storage", "uas", "sd_mod",
			// Watchdog and the hardware RNG (entropy early in boot).
			"bcm2835_wdt", "bcm2835-rng", "iproc-rng200"),
		Console: []string{"console=tty1", "console=ttyAMA10,115200", "console=ttyS1,115200"},
		NICs:    []string{"eth0"},
		// bcm2835_wdt registers /dev/watchdog; the firmware's own reset
		// path is the same PM block.
		Watchdog: "/dev/watchdog",
		Boot:     Boot{Method: Tryboot, Kernel: "vmlinuz", Initrd: "initrd.img"},
		Layout:   Layout{BootMiB: 64, SlotMiB: 256, DataMiB: 64},
	}
}
