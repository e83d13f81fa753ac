// Package image builds what a box boots from: the firmware binary cross
// compiled for the board, an initramfs (u-root's cpio; the binary as
// /init, /dev/console, only the kernel modules the board needs with their
// dependencies and a depmod-style index), the board's pinned Debian kernel
// fetched with apt-get download, and a disk image (go-diskfs): MBR,
// partition 1 for boot (Pi autoboot.txt and bootcode.bin, or GRUB; and the
// provisioning folder), partitions 2 and 3 for slots A and B (kernel and
// initramfs each), partition 4 for data (formatted by PID 1 on first
// boot). The same inputs — source, board, version, epoch, the pinned
// packages and the Go toolchain — give the same bytes.
//
// `make image BOARD=x` runs it through cmd/mkimage.
package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shoestring-dns/shoestring/board"
)

// Options configure a build.
type Options struct {
	Board *board.Board
	// Repo is the module root cmd/shoestring is built from.
	Repo string
	// Out is where artifacts go: Out/BOARD/.
	Out string
	// Cache holds downloaded packages and what is unpacked from them
	// (default Out/cache), kept between builds.
	Cache string
	// Version is stamped into the binary and board.json.
	Version string
	// Epoch is the build time recorded in the image (file times, the
	// clock's floor on the box): SOURCE_DATE_EPOCH.
	Epoch time.Time
	// Log receives progress lines.
	Log io.Writer
}

// Result lists the artifacts and their sizes.
type Result struct {
	Dir         string // Out/BOARD
	Disk        string // the disk image
	Kernel      string // the kernel as the boot loader gets it
	Initrd      string // the compressed initramfs
	Binary      string
	BinarySize  int64
	InitrdRaw   int64 // uncompressed cpio
	InitrdSize  int64
	KernelSize  int64
	DiskSize    int64
	Modules     int
	ModulesSize int64
}

// Build builds the board's images.
func Build(ctx context.Context, o Options) (*Result, error) {
	b := o.Board
	if o.Cache == "" {
		o.Cache = filepath.Join(o.Out, "cache")
	}
	var err error
	// apt and dpkg-deb run elsewhere; they need absolute paths.
	if o.Out, err = filepath.Abs(o.Out); err != nil {
		return nil, err
	}
	if o.Cache, err = filepath.Abs(o.Cache); err != nil {
		return nil, err
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	pr := newProgress(o.Log)
	pr.step("board %s: %s (version %s, epoch %s)", b.Name, b.Description, o.Version, o.Epoch.UTC().Format(time.RFC3339))
	res := &Result{Dir: filepath.Join(o.Out, b.Name)}
	if err := os.MkdirAll(res.Dir, 0o755); err != nil {
		return nil, err
	}
	// go-diskfs stamps FAT directory entries ("." and "..") with
	// SOURCE_DATE_EPOCH when set, and with the wall clock otherwise.
	restore := setEnv("SOURCE_DATE_EPOCH", strconv.FormatInt(o.Epoch.Unix(), 10))
	defer restore()

	f := &fetcher{cache: o.Cache, progress: pr}
	pkgs := append([]board.Package{b.Kernel.Package}, b.Packages...)
	debs, err := f.fetch(ctx, pkgs)
	if err != nil {
		return nil, err
	}
	k, err := unpackKernel(ctx, o.Cache, b.Kernel, debs[b.Kernel.Name], pr)
	if err != nil {
		return nil, err
	}
	g, err := unpackGRUB(ctx, o.Cache, b.Packages, debs, pr)
	if err != nil {
		return nil, err
	}

	res.Binary = filepath.Join(res.Dir, "shoestring")
	if err := buildBinary(ctx, o.Repo, res.Binary, b, o.Version, pr); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(res.Binary)
	if err != nil {
		return nil, err
	}
	res.BinarySize = int64(len(bin))

	pr.step("initramfs")
	ms, err := selectModules(k, b.Modules)
	if err != nil {
		return nil, err
	}
	res.Modules, res.ModulesSize = len(ms.mods), ms.size()
	rt, err := json.MarshalIndent(b.Runtime(o.Version, o.Epoch.Unix()), "", "  ")
	if err != nil {
		return nil, err
	}
	ir := newInitramfs()
	ir.base(bin, append(rt, '\n'))
	if err := ir.modules(ms); err != nil {
		return nil, err
	}
	raw, err := ir.cpio()
	if err != nil {
		return nil, err
	}
	initrd, err := compressInitramfs(raw)
	if err != nil {
		return nil, err
	}
	res.InitrdRaw, res.InitrdSize = int64(len(raw)), int64(len(initrd))
	res.Initrd = filepath.Join(res.Dir, b.Boot.Initrd)
	if err := os.WriteFile(res.Initrd, initrd, 0o644); err != nil {
		return nil, err
	}
	pr.done("%d modules (%s), cpio %s, zstd %s", res.Modules, mib(res.ModulesSize), mib(res.InitrdRaw), mib(res.InitrdSize))

	kernel, err := kernelImage(k, b.Kernel.Format)
	if err != nil {
		return nil, err
	}
	res.KernelSize = int64(len(kernel))
	res.Kernel = filepath.Join(res.Dir, b.Boot.Kernel)
	if err := os.WriteFile(res.Kernel, kernel, 0o644); err != nil {
		return nil, err
	}

	pr.step("disk image")
	boot, slot, mbrCode, gap, err := bootFiles(ctx, b, k, debs, kernel, initrd, o.Cache, g)
	if err != nil {
		return nil, err
	}
	res.Disk = filepath.Join(res.Dir, "shoestring-"+b.Name+".img")
	res.DiskSize, err = writeDisk(res.Disk, &diskSpec{
		layout: b.Layout, diskID: b.DiskID(), epoch: o.Epoch.UTC(),
		boot: boot, slotA: slot, slotB: map[string][]byte{}, mbrCode: mbrCode, gap: gap,
	})
	if err != nil {
		return nil, fmt.Errorf("disk image: %w", err)
	}
	pr.done("%s: %s", filepath.Base(res.Disk), mib(res.DiskSize))
	res.print(o.Log, b)
	return res, nil
}

func (r *Result) print(w io.Writer, b *board.Board) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "\n%s sizes:\n", b.Name)
	fmt.Fprintf(w, "  firmware binary  %10s\n", mib(r.BinarySize))
	fmt.Fprintf(w, "  kernel modules   %10s  (%d)\n", mib(r.ModulesSize), r.Modules)
	fmt.Fprintf(w, "  initramfs        %10s  (zstd; %s uncompressed)%s\n", mib(r.InitrdSize), mib(r.InitrdRaw), map[bool]string{true: "  OVER the 16 MiB aim"}[r.InitrdSize > 16<<20])
	fmt.Fprintf(w, "  kernel           %10s  (%s)\n", mib(r.KernelSize), b.Kernel.Format)
	fmt.Fprintf(w, "  disk image       %10s  %s\n", mib(r.DiskSize), r.Disk)
}

// setEnv sets an environment variable and returns a function restoring it.
func setEnv(k, v string) func() {
	old, had := os.LookupEnv(k)
	os.Setenv(k, v)
	return func() {
		if had {
			os.Setenv(k, old)
		} else {
			os.Unsetenv(k)
		}
	}
}
