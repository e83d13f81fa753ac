package pid1

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shoestring-dns/shoestring/board"
)

// powerRequest asks the box to stop.
type powerRequest struct {
	action string // "reboot", "tryboot" (the other slot, once) or "poweroff"
	reason string
}

// requestPower queues a request; a second one while stopping is ignored.
func (b *box) requestPower(r powerRequest) bool {
	select {
	case b.power <- r:
		return true
	default:
		return false
	}
}

// shutdown stops the box cleanly: the node drains and stops (its context
// cancelled), the services stop, the clock and the log are saved, the
// data partition is unmounted, then the kernel reboots or powers off.
// The whole stop is bounded by system.shutdown_timeout; the watchdog is
// fed until then, and not after.
func (b *box) shutdown(r powerRequest) {
	limit := time.Duration(b.cfg.System.ShutdownTimeout)
	deadline := time.Now().Add(limit)
	b.log.Info("stopping the box", "action", r.action, "reason", r.reason, "limit", limit)
	if b.wd != nil {
		b.wd.stop(deadline)
	}
	start := time.Now()
	b.stopNode()
	if !b.nodeSup.wait(time.Until(deadline)) {
		b.log.Error("node did not stop in time; going on", "waited", time.Since(start).Round(time.Millisecond))
	} else {
		b.log.Info("node stopped", "took", time.Since(start).Round(time.Millisecond))
	}
	if r.action == "tryboot" {
		if err := b.armTryboot(); err != nil {
			b.log.Error("cannot arm a trial boot of the other slot; plain reboot", "err", err)
		}
	}
	if b.dataDev != "" {
		if err := saveClock(clockFile()); err != nil {
			b.log.Warn("clock not saved", "err", err)
		}
	}
	b.log.Info("unmounting; goodbye", "action", r.action)
	b.stopServices()
	b.services.wait(5 * time.Second)
	releaseCrashOutput()
	unix.Sync()
	if err := unmountData(permDir); err != nil {
		fmt.Fprintln(os.Stderr, "shoestring:", err, "; open there:", openUnder(permDir))
	} else if b.dataDev != "" {
		fmt.Fprintln(os.Stderr, "shoestring: data partition unmounted cleanly")
	}
	if b.wd != nil {
		b.wd.disarm()
	}
	unix.Sync()
	kernelPower(r.action, b.board.Boot)
}

// kernelPower calls reboot(2); it does not return on success.
func kernelPower(action string, method board.BootMethod) {
	var err error
	switch {
	case action == "poweroff":
		err = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	case action == "tryboot" && method == board.Tryboot:
		// The Raspberry Pi firmware driver turns " tryboot" in the restart
		// argument into the firmware's one-shot tryboot flag.
		err = reboot2("0 tryboot")
	default:
		err = unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}
	fmt.Fprintln(os.Stderr, "shoestring: reboot(2) failed:", err)
	// Nothing else can be done; the watchdog (if armed) or the operator
	// resets the box.
	for {
		time.Sleep(time.Hour)
	}
}

// reboot2 is reboot(2) with LINUX_REBOOT_CMD_RESTART2 and an argument,
// which x/sys/unix's Reboot cannot pass.
func reboot2(arg string) error {
	p, err := unix.BytePtrFromString(arg)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_REBOOT, unix.LINUX_REBOOT_MAGIC1, unix.LINUX_REBOOT_MAGIC2,
		unix.LINUX_REBOOT_CMD_RESTART2, uintptr(unsafe.Pointer(p)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// armTryboot makes the next boot (only) come from the other slot, the
// board's way. The Pi needs nothing here: its flag travels with the
// reboot call. A failed trial falls back to the committed slot.
func (b *box) armTryboot() error {
	switch b.board.Boot {
	case board.Tryboot:
		return nil
	case board.Harness, board.GRUBEnv:
	default:
		return fmt.Errorf("board %s: no trial boot for method %q", b.board.Name, b.board.Boot)
	}
	if b.disk == "" {
		return fmt.Errorf("no boot disk")
	}
	dev := partitionDevice(b.disk, board.PartBoot)
	if err := os.MkdirAll(bootDir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(dev, bootDir, "vfat", unix.MS_NOATIME|unix.MS_NOEXEC, "flush"); err != nil {
		return err
	}
	defer func() { unix.Sync(); unix.Unmount(bootDir, 0) }()
	if b.board.Boot == board.Harness {
		return os.WriteFile(filepath.Join(bootDir, "tryboot"), []byte("try the [tryboot] partition once\n"), 0o644)
	}
	other := "B"
	if b.args.Slot == "B" {
		other = "A"
	}
	return setGRUBEnv(filepath.Join(bootDir, "grub", "grubenv"), "try_slot", other)
}

// setGRUBEnv sets a variable in a grubenv block, rewriting the 1024
// bytes in place: GRUB's save_env writes to the file's blocks directly,
// so its clusters must not move.
func setGRUBEnv(path, key, value string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	vars := map[string]string{}
	var order []string
	for _, l := range strings.Split(string(old), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			if _, seen := vars[k]; !seen {
				order = append(order, k)
			}
			vars[k] = v
		}
	}
	if _, seen := vars[key]; !seen {
		order = append(order, key)
	}
	vars[key] = value
	var s strings.Builder
	s.WriteString("# GRUB Environment Block\n")
	for _, k := range order {
		fmt.Fprintf(&s, "%s=%s\n", k, vars[k])
	}
	if s.Len() > len(old) {
		return fmt.Errorf("grubenv full")
	}
	block := []byte(s.String() + strings.Repeat("#", len(old)-s.Len()))
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(block, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// watchSignals turns the signals a PID 1 gets into power requests:
// Ctrl-Alt-Del (SIGINT, once the kernel is told to send it instead of
// rebooting at once) and SIGTERM reboot, SIGPWR and SIGUSR2 power off.
func (b *box) watchSignals(ctx context.Context) {
	unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGPWR, unix.SIGUSR2)
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-ch:
			action := "reboot"
			if s == unix.SIGPWR || s == unix.SIGUSR2 {
				action = "poweroff"
			}
			b.requestPower(powerRequest{action: action, reason: "signal " + s.String()})
		}
	}
}

// openUnder lists this process's open files under dir: what keeps a file
// system busy.
func openUnder(dir string) []string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range ents {
		if t, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(t, dir+"/") {
			out = append(out, t)
		}
	}
	return out
}
