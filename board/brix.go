package board

// brix is the Gigabyte BRIX class of mini PC (Intel or AMD, NVMe or
// SATA, Realtek or Intel NIC): UEFI, BIOS/CSM kept for older units.
func brix() *Board {
	return &Board{
		Name:        "brix",
		Description: "Gigabyte BRIX-class mini PCs (amd64), UEFI or BIOS",
		GOARCH:      "amd64",
		Kernel: Kernel{
			Package: trixieAMD64(),
			Release: "6.12.107+deb13-amd64",
			Format:  "bzImage",
		},
		Packages: grubPackages("i386-pc", "x86_64-efi"),
		Modules:  append(pcModules(), "nvme", "r8169", "igb", "igc", "e1000e", "sp5100_tco"),
		Console:  []string{"console=tty0", "console=ttyS0,115200"},
		NICs:     []string{"eth0"},
		Watchdog: "/dev/watchdog",
		Boot:     Boot{Method: GRUBEnv, BIOS: true, EFI: []string{"x86_64-efi"}, Kernel: "vmlinuz", Initrd: "initrd.img"},
		Layout:   Layout{BootMiB: 64, SlotMiB: 256, DataMiB: 64},
	}
}
