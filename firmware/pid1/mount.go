package pid1

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// earlyMount is one of the file systems every Linux userland expects.
type earlyMount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

func earlyMounts() []earlyMount {
	const nodev = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	return []earlyMount{
		{"proc", "/proc", "proc", nodev, ""},
		{"sysfs", "/sys", "sysfs", nodev, ""},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666"},
		{"tmpfs", "/dev/shm", "tmpfs", nodev, "mode=1777"},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755,size=20%"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777,size=20%"},
		// cgroup2 lets the node read its own memory figures; failure is
		// not fatal.
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", nodev, ""},
	}
}

// mountEarly mounts the early file systems. Only proc, sys and dev are
// essential; the others are reported and skipped.
func mountEarly() error {
	var errs []error
	for _, m := range earlyMounts() {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			err = fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
			if m.target == "/proc" || m.target == "/sys" || m.target == "/dev" {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// mountPoints lists what is mounted, from /proc/self/mounts.
func mountPoints() []string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			out = append(out, f[1])
		}
	}
	return out
}

// mounted reports whether target is a mount point.
func mounted(target string) bool {
	for _, m := range mountPoints() {
		if m == target {
			return true
		}
	}
	return false
}

// unmountData takes a persistent file system down cleanly: remount
// read-only first (which flushes and marks it clean even if something
// still holds a file open), then unmount, retrying briefly while busy.
func unmountData(target string) error {
	if !mounted(target) {
		return nil
	}
	unix.Sync()
	roErr := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
	var err error
	for i := 0; i < 10; i++ {
		if err = unix.Unmount(target, 0); err == nil || !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		if roErr == nil {
			// Read-only and clean is as good as unmounted for a reboot.
			return nil
		}
		return fmt.Errorf("unmount %s: %v (read-only remount: %v)", target, err, roErr)
	}
	return nil
}
