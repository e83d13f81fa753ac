package board

// The pinned Debian packages. Debian's archive keeps a kernel ABI package
// (linux-image-RELEASE) for as long as a suite lists it; when a point
// release drops it, apt-get download fails with the pin named, and the
// pin is moved here (package, version and the .deb's SHA-256 from
// `apt-cache show`). Downloads are cached under out/cache, so a box can
// always be rebuilt from a warm cache.

// trixieAMD64 is Debian 13's amd64 kernel (6.12 LTS).
func trixieAMD64() Package {
	return Package{Name: "linux-image-6.12.107+deb13-amd64", Version: "6.12.107-1", Arch: "amd64", Suite: "trixie",
		SHA256: "7794643cf4560de2a7e3b069e8ca8511ad2a568d652ea285f0fe051f79bc9e99"}
}

// trixieARM64 is Debian 13's arm64 kernel; it carries the Pi 3, 4 and 5
// device trees.
func trixieARM64() Package {
	return Package{Name: "linux-image-6.12.107+deb13-arm64", Version: "6.12.107-1", Arch: "arm64", Suite: "trixie",
		SHA256: "20c92f3f97dd466e0400a6fcb792bde85af842fbb5e8b471370065e3de9d9fc9"}
}

// bookworm686 is the last Debian i386 kernel (Debian 13 ships none): the
// non-PAE 686 flavour, which runs on every 32-bit Atom.
func bookworm686() Package {
	return Package{Name: "linux-image-6.1.0-50-686", Version: "6.1.176-1", Arch: "i386", Suite: "bookworm",
		SHA256: "526c469c5148a2b61c4241c3f6575427096575e0ffef9541b6729351c600b3e4"}
}

// raspiFirmware is the Pi boot firmware (bootcode.bin, start*.elf,
// fixup*.dat) from non-free-firmware.
func raspiFirmware() Package {
	return Package{Name: "raspi-firmware", Version: "1.20240424+ds-6", Arch: "all", Suite: "trixie",
		SHA256: "f95a3d3c41df10bac33580be91b595efa1e126ad5e4b7eca75ce26fbbc69af06"}
}

// grubPackages are GRUB's tools and images. Bookworm's, because the
// image builder runs their grub-mkimage on the build host (Debian 12 or
// later), and trixie's needs a newer C library.
func grubPackages(platforms ...string) []Package {
	pkgs := []Package{{Name: "grub-common", Version: "2.06-13+deb12u2", Arch: "amd64", Suite: "bookworm",
		SHA256: "fa2a91e48bb85effb1d9e22e16d83774e6de0ae6167268e8150e76ae963ec671"}}
	for _, p := range platforms {
		switch p {
		case "i386-pc":
			pkgs = append(pkgs, Package{Name: "grub-pc-bin", Version: "2.06-13+deb12u2", Arch: "amd64", Suite: "bookworm",
				SHA256: "db6aced5a89f02e10e150140b4df9621196f311c26203baf8558b4c6808e1298"})
		case "x86_64-efi":
			pkgs = append(pkgs, Package{Name: "grub-efi-amd64-bin", Version: "2.06-13+deb12u2", Arch: "amd64", Suite: "bookworm",
				SHA256: "c04786d9f64fbf7cd181013266a8af52b463599cc54189915d03f1459e743135"})
		case "i386-efi":
			pkgs = append(pkgs, Package{Name: "grub-efi-ia32-bin", Version: "2.06-13+deb12u2", Arch: "amd64", Suite: "bookworm",
				SHA256: "fb6b84509380487f1d88093eb9d7af8730f5e316028a0e478f1a415f9e2407d3"})
		}
	}
	return pkgs
}
