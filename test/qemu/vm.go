// Package qemu boots Shoestring disk images under QEMU (software
// emulation) the way a box boots them: the harness plays the board's
// firmware (autoboot.txt and the one-shot tryboot flag, as the Pi
// firmware reads them) and hands the chosen slot's kernel, initramfs and
// command line to QEMU; a board with its own boot loader (atom64: SeaBIOS,
// then GRUB) boots the disk itself. The tests in this directory boot
// qemu-amd64 and qemu-arm64 images, and update atom64 images through
// GRUB, against a BIRD on the host; `make qemu BOARD=x` boots one by hand
// with its console on the terminal (cmd/boot).
package qemu

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shoestring-dns/shoestring/board"
)

// Forward is a QEMU user-network port forward from the host's loopback
// to the guest.
type Forward struct {
	Proto     string // tcp or udp
	HostPort  int
	GuestPort int
	// GuestAddr is the guest address forwarded to (default: the guest's
	// DHCP address, 10.0.2.15).
	GuestAddr string
}

// VM is one boot of a disk image.
type VM struct {
	Board *board.Board
	Disk  string
	// Forwards are host loopback ports forwarded to the guest.
	Forwards []Forward
	// Console receives the serial console.
	Console io.Writer
	// Stdin, when set, is the console's input (interactive boots).
	Stdin io.Reader
	// Extra QEMU arguments (e.g. -rtc).
	Extra []string
	// Dir holds the kernel and initramfs handed to QEMU.
	Dir string

	Slot    *BootSlot
	Started time.Time
	// CPU is the CPU time QEMU used, set once it exited: unlike the
	// wall time, it hardly depends on what else the machine runs.
	CPU time.Duration

	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
}

// Start chooses the slot, writes its kernel and initramfs out and starts
// QEMU.
func (vm *VM) Start(ctx context.Context) error {
	q := vm.Board.QEMU
	if q == nil {
		return fmt.Errorf("board %s has no QEMU definition", vm.Board.Name)
	}
	var boot []string
	if q.Firmware {
		// The board's own boot loader chooses the slot.
		vm.Slot = &BootSlot{Slot: "(boot loader)"}
	} else {
		im, err := OpenImage(vm.Disk)
		if err != nil {
			return err
		}
		vm.Slot, err = im.ChooseSlot(vm.Board)
		im.Close()
		if err != nil {
			return err
		}
		if vm.Dir == "" {
			if vm.Dir, err = os.MkdirTemp("", "shoestring-vm-"); err != nil {
				return err
			}
		}
		kernel, initrd := filepath.Join(vm.Dir, "kernel"), filepath.Join(vm.Dir, "initrd")
		if err := os.WriteFile(kernel, vm.Slot.Kernel, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(initrd, vm.Slot.Initrd, 0o644); err != nil {
			return err
		}
		boot = []string{"-kernel", kernel, "-initrd", initrd, "-append", vm.Slot.Cmdline}
	}
	diskIf := q.DiskIf
	if diskIf == "" {
		diskIf = "virtio"
	}
	netdev := "user,id=n0"
	for _, f := range vm.Forwards {
		netdev += fmt.Sprintf(",hostfwd=%s:127.0.0.1:%d-%s:%d", f.Proto, f.HostPort, f.GuestAddr, f.GuestPort)
	}
	args := append([]string{}, q.Args...)
	if vm.Stdin != nil {
		// Interactive: QEMU's monitor shares the terminal (Ctrl-A X quits).
		args = append(args, "-display", "none", "-serial", "mon:stdio")
	} else {
		args = append(args, "-display", "none", "-monitor", "none", "-serial", "stdio")
	}
	args = append(args, "-no-reboot")
	args = append(args, boot...)
	drive := "file=" + vm.Disk + ",format=raw,cache=unsafe"
	if diskIf == "ahci" {
		// A SATA disk on an AHCI controller, as the board has: SeaBIOS
		// reads it by DMA, where an IDE disk is read a word at a time
		// (under emulation GRUB loads kernel and initramfs about ten
		// times faster).
		args = append(args, "-device", "ahci,id=ahci", "-drive", drive+",if=none,id=disk0", "-device", "ide-hd,drive=disk0,bus=ahci.0")
	} else {
		args = append(args, "-drive", drive+",if="+diskIf)
	}
	args = append(args, "-netdev", netdev, "-device", q.NetDev+",netdev=n0")
	args = append(args, vm.Extra...)
	bin, err := exec.LookPath(q.Binary)
	if err != nil {
		return fmt.Errorf("%s (Debian package %s): %w", q.Binary, q.Package, err)
	}
	vm.cmd = exec.CommandContext(ctx, bin, args...)
	vm.cmd.Stdout = vm.Console
	vm.cmd.Stderr = vm.Console
	vm.cmd.Stdin = vm.Stdin
	vm.done = make(chan struct{})
	vm.Started = time.Now()
	if err := vm.cmd.Start(); err != nil {
		return err
	}
	go func() {
		vm.err = vm.cmd.Wait()
		if ps := vm.cmd.ProcessState; ps != nil {
			vm.CPU = ps.UserTime() + ps.SystemTime()
		}
		close(vm.done)
	}()
	return nil
}

// Wait waits for QEMU to exit, at most timeout.
func (vm *VM) Wait(timeout time.Duration) error {
	select {
	case <-vm.done:
		return vm.err
	case <-time.After(timeout):
		return fmt.Errorf("QEMU still running after %s", timeout)
	}
}

// Done is closed when QEMU exits.
func (vm *VM) Done() <-chan struct{} { return vm.done }

// Kill stops QEMU if it runs.
func (vm *VM) Kill() {
	vm.once.Do(func() {
		if vm.cmd != nil && vm.cmd.Process != nil {
			select {
			case <-vm.done:
			default:
				vm.cmd.Process.Kill()
				<-vm.done
			}
		}
	})
}

// CopyDisk copies a disk image (sparse) and grows the copy to size
// bytes, as writing an image to a larger SD card does.
func CopyDisk(src, dst string, size int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	// io.Copy uses copy_file_range, which keeps holes on most file systems.
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if fi, err := out.Stat(); err == nil && fi.Size() < size {
		if err := out.Truncate(size); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}

// LineWaiter is an io.Writer that keeps what it is given and lets
// callers wait for a line containing a string.
type LineWaiter struct {
	mu   sync.Mutex
	buf  strings.Builder
	tee  io.Writer
	wake chan struct{}
}

// NewLineWaiter returns a waiter that copies everything to tee (if set).
func NewLineWaiter(tee io.Writer) *LineWaiter {
	return &LineWaiter{tee: tee, wake: make(chan struct{})}
}

func (w *LineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
	if w.tee != nil {
		w.tee.Write(p)
	}
	return len(p), nil
}

// String returns everything written so far.
func (w *LineWaiter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// WaitFor waits until the output from offset `from` on contains s; it
// returns the offset just after the match.
func (w *LineWaiter) WaitFor(ctx context.Context, s string, from int) (int, error) {
	for {
		w.mu.Lock()
		text := w.buf.String()
		wake := w.wake
		w.mu.Unlock()
		if from > len(text) {
			from = len(text)
		}
		if i := strings.Index(text[from:], s); i >= 0 {
			return from + i + len(s), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for %q: %w", s, ctx.Err())
		case <-wake:
		}
	}
}

// Len is the length of the output so far.
func (w *LineWaiter) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Len()
}
