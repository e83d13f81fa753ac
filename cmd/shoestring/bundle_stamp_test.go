package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
)

// writeInitramfs writes a zstd newc cpio as the image builder does.
func writeInitramfs(t *testing.T, p string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	for _, n := range []string{"init", "etc/shoestring/board.json", "lib/modules/x.ko"} {
		data, ok := files[n]
		if !ok {
			continue
		}
		if err := w.WriteRecord(cpio.StaticRecord([]byte(data), cpio.Info{Name: n, Mode: cpio.S_IFREG | 0o644})); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil)
	if err := os.WriteFile(p, enc.EncodeAll(buf.Bytes(), nil), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBundleStamp(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, 0, "keygen", "-out", dir)
	kernel := filepath.Join(dir, "vmlinuz")
	os.WriteFile(kernel, []byte("kernel"), 0o644)
	ir := filepath.Join(dir, "initrd.img")
	writeInitramfs(t, ir, map[string]string{
		"init":                      strings.Repeat("x", 1001),
		"etc/shoestring/board.json": `{"name": "atom64", "version": "v1.2.3-4-gabcdef012345"}`,
		"lib/modules/x.ko":          "mod",
	})
	create := func(want int, version string, extra ...string) string {
		return mustRun(t, want, append([]string{"create", "-key", filepath.Join(dir, "shoestring.key"), "-board", "atom64", "-version", version,
			"-kernel", kernel, "-initramfs", ir, "-out", filepath.Join(dir, "b")}, extra...)...)
	}
	create(0, "v1.2.3-4-gabcdef012345", "-stamped")
	if out := create(1, "v1.2.3-5-gabcdef012345"); !strings.Contains(out, "stamped board atom64 version v1.2.3-4-gabcdef012345") {
		t.Errorf("another version: %s", out)
	}
	// Not an image builder's initramfs: only -stamped refuses it.
	writeInitramfs(t, ir, map[string]string{"init": "x"})
	create(0, "v1.0.0")
	create(1, "v1.0.0", "-stamped")
	os.WriteFile(ir, []byte("plain bytes"), 0o644)
	create(0, "v1.0.0")
	create(1, "v1.0.0", "-stamped")
}
