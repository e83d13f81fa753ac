package tenant

import (
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestSpawnerOutlivesCallerThread starts a child with Pdeathsig from a
// goroutine locked to its thread, which then ends: forked by the
// spawner, the child lives on; forked by that thread itself, it is
// killed (the hazard the spawner is for, shown on this kernel).
func TestSpawnerOutlivesCallerThread(t *testing.T) {
	sp := newSpawner()
	for _, c := range []struct {
		name      string
		viaSpawn  bool
		wantAlive bool
	}{{"spawner", true, true}, {"own thread", false, false}} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command("sleep", "30")
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			errc := make(chan error, 1)
			go func() {
				runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
				if c.viaSpawn {
					errc <- sp.start(cmd)
				} else {
					errc <- cmd.Start()
				}
			}()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			exited := make(chan struct{})
			go func() { cmd.Process.Wait(); close(exited) }()
			select {
			case <-exited:
				if c.wantAlive {
					t.Fatal("the child died when the thread that asked for it ended")
				}
			case <-time.After(500 * time.Millisecond):
				if !c.wantAlive {
					t.Fatal("a child forked from a thread that ended is still alive: the premise of the spawner does not hold here")
				}
			}
		})
	}
}
