package qemu

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
)

// The bad firmware TestOTA offers a box, each failing the way a real
// update can: an /init that dies (a kernel panic), one that hangs once
// the watchdog is armed, and a kernel that cannot see its disk.

// exitingInitramfs is an initramfs whose /init is a static program that
// exits at once: the kernel panics ("Attempted to kill init!").
func exitingInitramfs(t *testing.T, dir string) []byte {
	t.Helper()
	init := buildStatic(t, dir, "exiting", "package main\n\nfunc main() {}\n")
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	for _, r := range []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticRecord(init, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	} {
		if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hangingInit arms the hardware watchdog as our PID 1 does at once — the
// driver loaded from the image's own modules, a 10 s timeout — and then
// hangs: a firmware stuck before it is healthy, which only the watchdog
// can get out of.
const hangingInit = `package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	// Said through the kernel's log, which reaches the serial console
	// as the kernel's own messages do (what init wrote to its stderr
	// did not show there).
	say := func(s string) { os.Stderr.WriteString(s + "\n") }
	if kmsg, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		say = func(s string) { kmsg.WriteString("<3>" + s + "\n") }
	}
	for _, m := range []string{"/watchdog.ko", "/i6300esb.ko"} { // i6300esb needs the watchdog core
		filepath.WalkDir("/lib/modules", func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, m) {
				if f, err := os.Open(p); err == nil {
					empty := [1]byte{}
					// finit_module(2), 313 on amd64 (package syscall has no name for it).
					syscall.Syscall(313, f.Fd(), uintptr(unsafe.Pointer(&empty[0])), 0)
					f.Close()
				}
			}
			return nil
		})
	}
	var wd *os.File
	for i := 0; i < 100 && wd == nil; i++ {
		wd, _ = os.OpenFile("/dev/watchdog", os.O_WRONLY, 0)
		time.Sleep(50 * time.Millisecond)
	}
	if wd == nil {
		say("hanging-init: no /dev/watchdog")
	} else {
		secs := int32(10)
		syscall.Syscall(syscall.SYS_IOCTL, wd.Fd(), 0xc0045706, uintptr(unsafe.Pointer(&secs))) // WDIOC_SETTIMEOUT
		say("hanging-init: watchdog armed; hanging")
	}
	for {
		time.Sleep(time.Hour)
	}
}
`

// hangingInitramfs is the board's initramfs with /init replaced by
// hangingInit (its modules kept for the watchdog driver).
func hangingInitramfs(t *testing.T, dir string, initrd []byte) []byte {
	t.Helper()
	init := buildStatic(t, dir, "hanging", hangingInit)
	return appendArchive(t, initrd, cpio.StaticRecord(init, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}))
}

// blindInitramfs is the board's initramfs with its SATA driver broken, as
// a new image missing its storage driver would be: the kernel cannot see
// the disk it was loaded from.
func blindInitramfs(t *testing.T, initrd []byte) []byte {
	t.Helper()
	module, _ := initramfsFile(t, initrd, "/ahci.ko")
	if module == "" {
		t.Fatal("the initramfs carries no ahci.ko: the blind image would see its disk")
	}
	return appendArchive(t, initrd, cpio.StaticRecord([]byte("not a module\n"), cpio.Info{Name: module, Mode: cpio.S_IFREG | 0o644}))
}

// initramfsFile finds the first file of a built initramfs (zstd, newc)
// whose name ends in suffix: its name and contents ("" when none).
func initramfsFile(t *testing.T, initrd []byte, suffix string) (string, []byte) {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(initrd))
	if err != nil {
		t.Fatalf("initramfs: %v", err)
	}
	defer zr.Close()
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("initramfs: %v", err)
	}
	r := cpio.Newc.Reader(bytes.NewReader(raw))
	for {
		rec, err := r.ReadRecord()
		if err == io.EOF {
			return "", nil
		}
		if err != nil {
			t.Fatalf("reading the initramfs: %v", err)
		}
		if strings.HasSuffix(rec.Name, suffix) {
			data, err := io.ReadAll(io.NewSectionReader(rec, 0, int64(rec.FileSize)))
			if err != nil {
				t.Fatalf("reading %s from the initramfs: %v", rec.Name, err)
			}
			return rec.Name, data
		}
	}
}

// appendArchive keeps an initramfs whole and appends a second,
// uncompressed cpio archive: the kernel unpacks both in turn, a later
// file replacing an earlier one
// (Documentation/driver-api/early-userspace/buffer-format.rst).
func appendArchive(t *testing.T, initrd []byte, recs ...cpio.Record) []byte {
	t.Helper()
	out := bytes.Clone(initrd)
	for len(out)%4 != 0 { // each archive starts 4-byte aligned
		out = append(out, 0)
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	for _, r := range recs {
		if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return append(out, buf.Bytes()...)
}

// buildStatic builds a one-file Go program for the guest (amd64, static).
func buildStatic(t *testing.T, dir, name, src string) []byte {
	t.Helper()
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "go.mod"), []byte("module "+name+"\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name+".bin")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = d
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
