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
	restart := ""
	switch r.action {
	case "tryboot":
		arg, err := b.armTryboot()
		if err != nil {
			b.log.Error("cannot arm a trial boot of the other slot; plain reboot", "err", err)
			r.action = "reboot"
		}
		restart = arg
	case "reboot":
		// An armed trial (an update just installed) needs the Pi's flag
		// with the reboot; a trial running now is re-armed, so that a
		// deliberate reboot does not cost it (trialRebootArg).
		restart = b.trialRebootArg()
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
	kernelPower(r.action, restart)
}

// kernelPower calls reboot(2); it does not return on success. A restart
// argument (slot.RestartArg: the Pi's "0 tryboot", which its firmware
// driver turns into the one-shot tryboot flag) makes it RESTART2.
func kernelPower(action, restartArg string) {
	var err error
	switch {
	case action == "poweroff":
		err = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	case restartArg != "":
		err = reboot2(restartArg)
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
