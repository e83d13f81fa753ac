package nslab

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// InNS runs f on an OS thread moved into the named network namespace
// (/run/netns/NAME, as `ip netns add` makes it). A socket f opens stays
// in that namespace after the thread moves back, so a test's own process
// can be a client, relay or listener in a namespace without moving into
// it. The thread is moved back and handed back to the runtime
// afterwards. It must not die: a daemon (BIRD, a node) started with
// Pdeathsig from that thread would be killed with it, since the parent
// death signal follows the thread, not the process. Only when it cannot
// move back does it stay locked and end with the goroutine.
func InNS(name string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		fd, err := os.Open("/run/netns/" + name)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("namespace %s: %w", name, err)
			return
		}
		defer fd.Close()
		if err := unix.Setns(int(fd.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("entering namespace %s: %w", name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("leaving namespace %s: %w", name, err)
			return // the thread stays locked and ends with the goroutine
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
