package board

import (
	"strings"
	"testing"
)

// TestBoards checks every definition is complete and consistent: what
// the image builder, PID 1 and the OTA agent rely on.
func TestBoards(t *testing.T) {
	want := []string{"atom386", "atom64", "brix", "qemu-amd64", "qemu-arm64", "rpi"}
	if got := strings.Join(Names(), ","); got != strings.Join(want, ",") {
		t.Fatalf("boards %s, want %s", got, strings.Join(want, ","))
	}
	ids := map[uint32]string{}
	for _, b := range All() {
		t.Run(b.Name, func(t *testing.T) {
			switch b.GOARCH {
			case "amd64", "arm64":
			case "386":
				if b.GO386 == "" {
					t.Error("386 without GO386")
				}
			default:
				t.Errorf("GOARCH %q", b.GOARCH)
			}
			k := b.Kernel
			if k.Name == "" || k.Version == "" || len(k.SHA256) != 64 || k.Release == "" || !strings.Contains(k.Name, k.Release) {
				t.Errorf("kernel pin incomplete: %+v", k.Package)
			}
			if k.Arch != map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386"}[b.GOARCH] {
				t.Errorf("kernel arch %s for GOARCH %s", k.Arch, b.GOARCH)
			}
			for _, p := range b.Packages {
				if len(p.SHA256) != 64 || p.Version == "" || p.Suite == "" {
					t.Errorf("package pin incomplete: %+v", p)
				}
			}
			if len(b.Console) == 0 || len(b.NICs) == 0 || b.Watchdog == "" || b.Boot.Kernel == "" || b.Boot.Initrd == "" {
				t.Errorf("incomplete: console %v nics %v watchdog %q boot %+v", b.Console, b.NICs, b.Watchdog, b.Boot)
			}
			switch b.Boot.Method {
			case Tryboot:
				if len(k.DTBs) == 0 || k.Format != "Image" {
					t.Error("Pi without device trees or with a compressed kernel")
				}
			case GRUBEnv:
				if !b.Boot.BIOS && len(b.Boot.EFI) == 0 {
					t.Error("GRUB board with neither BIOS nor EFI")
				}
				if len(b.Packages) < 2 {
					t.Error("GRUB board without GRUB packages")
				}
			case Harness:
				if b.QEMU == nil {
					t.Error("harness board without QEMU")
				}
			default:
				t.Errorf("boot method %q", b.Boot.Method)
			}
			if l := b.Layout; l.BootMiB < 33 || l.SlotMiB < 64 || l.DataMiB < 16 {
				// FAT32 needs 65525 clusters: 33 MiB at 512-byte clusters.
				t.Errorf("layout %+v", l)
			}
			cl := b.KernelCmdline("B", b.DiskID())
			if !strings.Contains(cl, "shoestring.slot=B") || !strings.Contains(cl, "panic=10") || !strings.HasPrefix(cl, "console=") {
				t.Errorf("cmdline %q", cl)
			}
			for _, m := range []string{"ext4", "vfat"} {
				found := false
				for _, x := range b.Modules {
					found = found || x == m
				}
				if !found {
					t.Errorf("module %s missing", m)
				}
			}
			if other, dup := ids[b.DiskID()]; dup {
				t.Errorf("disk ID %08x shared with %s", b.DiskID(), other)
			}
			ids[b.DiskID()] = b.Name
			rt := b.Runtime("v1", 1)
			if rt.Name != b.Name || rt.Kernel != k.Release || len(rt.Load) == 0 {
				t.Errorf("runtime %+v", rt)
			}
		})
	}
	if _, err := Get("nope"); err == nil {
		t.Error("unknown board found")
	}
	if p, err := SlotPartition("B"); p != PartSlotB || err != nil {
		t.Error("slot B")
	}
}
