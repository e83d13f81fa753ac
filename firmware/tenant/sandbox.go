package tenant

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Init is `shoestring tenant-init`: it runs as root in the tenant's own
// mount and PID namespaces (the host started it so), waits until the host
// has put it in the tenant's cgroup, builds the tenant's root and enters
// it, drops to the tenant's uid with no capabilities, and executes the
// tenant's server inside. Nothing it mounts is visible outside its mount
// namespace, and all of it goes when the tenant's last process does, so a
// tenant that dies or is removed leaves no mount behind.
func Init() error {
	// Credentials, no_new_privs and exec must all be this one thread's.
	runtime.LockOSThread()
	spec, err := readSpec()
	if err != nil {
		return err
	}
	start := os.NewFile(fdStart, "start")
	var b [1]byte
	start.Read(b[:]) // EOF once the host is done with the cgroup
	start.Close()
	if spec.CPUs != "" {
		// It was started with the host's confined affinity; this is the
		// thread that executes the server.
		if err := widenTenant(spec.CPUs); err != nil {
			return fmt.Errorf("tenant %s: cpus: %w", spec.Name, err)
		}
	}
	if err := buildRoot(spec); err != nil {
		return fmt.Errorf("tenant %s: root: %w", spec.Name, err)
	}
	// chroot after bind mounts, not pivot_root: pivot_root fails when the
	// host's own root is an initramfs (our PID 1).
	if err := unix.Chroot(spec.Root); err != nil {
		return fmt.Errorf("tenant %s: chroot: %w", spec.Name, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("tenant %s: chdir: %w", spec.Name, err)
	}
	// setgroups, setgid, setuid: apply to every thread (Go does that for
	// these calls); leaving root clears the permitted and effective
	// capabilities, and exec as non-root gives none back.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := unix.Setresgid(spec.GID, spec.GID, spec.GID); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := unix.Setresuid(spec.UID, spec.UID, spec.UID); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	err = unix.Exec(binaryInRoot, []string{"shoestring", ServeCommand}, os.Environ())
	return fmt.Errorf("tenant %s: exec %s in its root: %w", spec.Name, binaryInRoot, err)
}

// buildRoot makes the tenant's root: a small tmpfs holding only our
// binary (read-only), the tenant's data directory and its own /proc, then
// read-only itself.
func buildRoot(spec childSpec) error {
	// Our mounts must not propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	root := spec.Root
	if err := unix.Mount("tenant-"+spec.Name, root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0755"); err != nil {
		return fmt.Errorf("tmpfs on %s: %w", root, err)
	}
	bin := filepath.Join(root, binaryInRoot)
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		return fmt.Errorf("binary mount point: %w", err)
	}
	if err := bindMount(spec.Binary, bin, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		return err
	}
	data := filepath.Join(root, dataInRoot)
	if err := os.Mkdir(data, 0o755); err != nil {
		return fmt.Errorf("data mount point: %w", err)
	}
	if err := bindMount(spec.Data, data, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
		return err
	}
	proc := filepath.Join(root, "proc")
	if err := os.Mkdir(proc, 0o555); err != nil {
		return fmt.Errorf("proc mount point: %w", err)
	}
	// This PID namespace's /proc: the tenant sees its own processes only.
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("proc: %w", err)
	}
	if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("root read-only: %w", err)
	}
	return nil
}

// bindMount binds src on dst, then applies flags (a bind mount takes its
// flags only on a remount).
func bindMount(src, dst string, flags uintptr) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|flags, ""); err != nil {
		return fmt.Errorf("remount %s: %w", dst, err)
	}
	return nil
}
