package pid1

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
)

// keepCrashes sends the Go runtime's fatal error output (a panic's
// goroutine dump) to a file on the data partition as well as the
// console, and logs what the previous boot left there: a box that
// crashed and rebooted while nobody watched its console still tells why.
func keepCrashes(log *slog.Logger) {
	path := filepath.Join(systemDir, "crash.log")
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		const keep = 4096
		if len(b) > keep {
			b = b[:keep]
		}
		log.Error("the previous boot crashed", "output", string(b))
		os.Rename(path, path+".prev")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		log.Warn("crash output not kept", "err", err)
		return
	}
	if err := debug.SetCrashOutput(f, debug.CrashOptions{}); err != nil {
		log.Warn("crash output not kept", "err", err)
	}
	// The runtime holds its own copy of the descriptor.
	f.Close()
}

// releaseCrashOutput stops writing crash output to the data partition, so
// it can be unmounted.
func releaseCrashOutput() {
	debug.SetCrashOutput(nil, debug.CrashOptions{})
}
