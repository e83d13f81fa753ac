package tenant

import (
	"errors"
	"fmt"
	"os"

	"github.com/landlock-lsm/go-landlock/landlock"
	"golang.org/x/sys/unix"
)

// A tenant process confines its own file system access with Landlock, on
// top of its chroot and uid: its root read-only (the binary, /proc), its
// data read-write, nothing else writable — so a bug in the name server
// that writes where it should not fails even where the uid could (its
// own /proc files, say). Landlock applies to every thread of the process
// and is inherited by anything it would execute.

// landlockConfig writes the rules for Landlock ABI 7 at most: rights a
// newer kernel adds are left alone, so a tenant behaves the same on every
// kernel from that one on; an older kernel enforces what it knows
// (BestEffort).
var landlockConfig = landlock.V7.BestEffort()

// restrictFiles applies the rules and says what is in force: "enforced …"
// or "off: why". A kernel without Landlock leaves the tenant running
// with its other protections.
func restrictFiles() (string, bool) {
	abi, err := landlockVersion()
	if err != nil {
		return "off: the kernel has no Landlock (" + err.Error() + ")", false
	}
	if err := landlockConfig.RestrictPaths(landlock.RODirs("/"), landlock.RWDirs(dataInRoot)); err != nil {
		return "off: " + err.Error(), false
	}
	return fmt.Sprintf("enforced (kernel ABI %d): / read-only, %s read-write", abi, dataInRoot), true
}

// landlockVersion asks the kernel for its Landlock ABI version.
func landlockVersion() (int, error) {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0, e
	}
	return int(v), nil
}

// writeOutsideDenied checks the rules from inside: the process's own
// /proc/self/comm is a file its uid may write, outside its data; written
// back with what it holds, it must be refused.
func writeOutsideDenied() bool {
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		return false
	}
	err = os.WriteFile("/proc/self/comm", comm, 0)
	return errors.Is(err, os.ErrPermission)
}
