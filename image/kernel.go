package image

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/shoestring-dns/shoestring/board"
)

// kernelTree is a kernel package unpacked into the cache: the image, the
// module tree as shipped (compressed or not) and the device trees.
type kernelTree struct {
	dir     string // cache directory
	release string
}

func (k *kernelTree) vmlinuz() string  { return filepath.Join(k.dir, "vmlinuz") }
func (k *kernelTree) modules() string  { return filepath.Join(k.dir, "modules") }
func (k *kernelTree) dtbs() string     { return filepath.Join(k.dir, "dtbs") }
func (k *kernelTree) complete() string { return filepath.Join(k.dir, "complete") }

// unpackKernel unpacks the kernel .deb once; later builds reuse it.
func unpackKernel(ctx context.Context, cache string, kp board.Kernel, deb string, pr *progress) (*kernelTree, error) {
	k := &kernelTree{dir: filepath.Join(cache, "kernel", kp.Name+"_"+kp.Version), release: kp.Release}
	if b, err := os.ReadFile(k.complete()); err == nil && string(b) == kp.SHA256 {
		return k, nil
	}
	pr.step("unpacking %s", filepath.Base(deb))
	start := time.Now()
	if err := os.RemoveAll(k.dir); err != nil {
		return nil, err
	}
	rel := kp.Release
	modPrefixes := []string{"usr/lib/modules/" + rel + "/", "lib/modules/" + rel + "/"}
	dtbPrefix := "usr/lib/linux-image-" + rel + "/"
	n, err := extractDeb(ctx, deb, k.dir, func(name string) (string, bool) {
		if name == "boot/vmlinuz-"+rel {
			return "vmlinuz", true
		}
		for _, p := range modPrefixes {
			if rest, ok := strings.CutPrefix(name, p); ok {
				return filepath.Join("modules", rest), true
			}
		}
		if rest, ok := strings.CutPrefix(name, dtbPrefix); ok && strings.HasSuffix(rest, ".dtb") {
			return filepath.Join("dtbs", rest), true
		}
		return "", false
	})
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(k.vmlinuz()); err != nil {
		return nil, fmt.Errorf("%s: no boot/vmlinuz-%s (is Release right in the board?)", filepath.Base(deb), rel)
	}
	pr.done("%d files in %s", n, time.Since(start).Round(100*time.Millisecond))
	return k, os.WriteFile(k.complete(), []byte(kp.SHA256), 0o644)
}

// readModule returns a module's ELF bytes, decompressing .ko.xz, .ko.zst
// and .ko.gz as shipped (the initramfs carries them uncompressed: it is
// compressed as a whole, and the kernel then loads them with
// finit_module directly).
func readModule(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(path, ".xz"):
		if r, err = xz.NewReader(f); err != nil {
			return nil, err
		}
	case strings.HasSuffix(path, ".zst"):
		d, err := zstd.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		r = d
	case strings.HasSuffix(path, ".gz"):
		return nil, fmt.Errorf("%s: gzip modules are not expected from Debian", path)
	}
	return io.ReadAll(r)
}

// kernelImage returns the kernel file for the board's boot loader.
func kernelImage(k *kernelTree, format string) ([]byte, error) {
	b, err := os.ReadFile(k.vmlinuz())
	if err != nil {
		return nil, err
	}
	switch format {
	case "bzImage", "Image":
		return b, nil
	case "vmlinux-pvh":
		return vmlinuxFromBzImage(b)
	}
	return nil, fmt.Errorf("unknown kernel format %q", format)
}

// vmlinuxFromBzImage returns the ELF kernel inside an x86 bzImage. QEMU
// boots it through its PVH entry point directly, which saves the
// decompression that under software emulation takes seconds. The payload
// is found from the boot protocol header (payload_offset and
// payload_length, protocol 2.08+) and decompressed by its magic.
func vmlinuxFromBzImage(b []byte) ([]byte, error) {
	if len(b) < 0x250 || string(b[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not a bzImage (no HdrS header)")
	}
	if v := binary.LittleEndian.Uint16(b[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("boot protocol %#x too old for payload_offset", v)
	}
	setupSects := int(b[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	pm := (setupSects + 1) * 512
	off := int(binary.LittleEndian.Uint32(b[0x248:]))
	n := int(binary.LittleEndian.Uint32(b[0x24c:]))
	if pm+off+n > len(b) {
		return nil, errors.New("bzImage payload out of range")
	}
	// Linux appends the uncompressed size (4 bytes) to the compressed
	// stream; neither decoder wants it.
	payload := b[pm+off : pm+off+n-4]
	var out []byte
	var err error
	switch {
	case bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, derr := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(1<<30))
		if derr != nil {
			return nil, derr
		}
		defer d.Close()
		out, err = d.DecodeAll(payload, nil)
	case bytes.HasPrefix(payload, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		r, xerr := xz.NewReader(bytes.NewReader(payload))
		if xerr != nil {
			return nil, xerr
		}
		out, err = io.ReadAll(r)
	default:
		return nil, fmt.Errorf("bzImage payload compression % x not handled", payload[:4])
	}
	if err != nil {
		return nil, fmt.Errorf("decompressing bzImage payload: %w", err)
	}
	// What matters is that it is an ELF with the PVH note QEMU boots by.
	f, err := elf.NewFile(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("bzImage payload is not an ELF: %w", err)
	}
	defer f.Close()
	if !hasPVHNote(f) {
		return nil, errors.New("kernel ELF has no PVH entry note (CONFIG_PVH off?)")
	}
	return out, nil
}

// hasPVHNote looks for XEN_ELFNOTE_PHYS32_ENTRY (type 18, owner "Xen").
func hasPVHNote(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		data, err := io.ReadAll(p.Open())
		if err != nil {
			continue
		}
		for len(data) >= 12 {
			nsz := int(f.ByteOrder.Uint32(data))
			dsz := int(f.ByteOrder.Uint32(data[4:]))
			typ := f.ByteOrder.Uint32(data[8:])
			name := data[12:min(len(data), 12+nsz)]
			if typ == 18 && strings.TrimRight(string(name), "\x00") == "Xen" {
				return true
			}
			adv := 12 + align4(nsz) + align4(dsz)
			if adv > len(data) {
				break
			}
			data = data[adv:]
		}
	}
	return false
}

func align4(n int) int { return (n + 3) &^ 3 }

// dtbFiles returns the device trees matching the board's patterns, as
// paths relative to the kernel's dtb tree, sorted.
func dtbFiles(k *kernelTree, patterns []string) ([]string, error) {
	var out []string
	for _, p := range patterns {
		m, err := filepath.Glob(filepath.Join(k.dtbs(), p))
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("no device tree matches %s", p)
		}
		for _, f := range m {
			rel, _ := filepath.Rel(k.dtbs(), f)
			out = append(out, filepath.ToSlash(rel))
		}
	}
	return sortedUnique(out), nil
}

func sortedUnique(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

// moduleFile strips the compression suffix of a module path.
func moduleFile(p string) string {
	for _, s := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(p, ".ko"+s) {
			return strings.TrimSuffix(p, s)
		}
	}
	return p
}

// moduleName is the kernel's name for a module file: base name without
// .ko, dashes as underscores.
func moduleName(p string) string {
	b := path.Base(moduleFile(p))
	return normalizeModName(strings.TrimSuffix(b, ".ko"))
}

func normalizeModName(s string) string { return strings.ReplaceAll(s, "-", "_") }
