package tenant

import (
	"os/exec"
	"runtime"
)

// A tenant process dies with its host: it is started with Pdeathsig
// SIGKILL, so that no tenant serves on unsupervised after its host
// crashed. But the kernel sends the parent death signal when the thread
// that forked the child ends, not when the parent process does; and the
// Go runtime ends an OS thread whenever a goroutine locked to it
// (LockOSThread, as netlink and landlock libraries do, and tests) returns
// without unlocking. A tenant forked from such a thread would be killed
// at a random moment, long after its start. (It happened to BIRD in
// test/tenants, forked from a thread a test had locked.) So tenants are
// forked from one thread kept for that alone, which never ends while the
// host runs.

// spawner starts processes from its own OS thread.
type spawner struct {
	req chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newSpawner() *spawner {
	s := &spawner{req: make(chan spawnReq)}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	// Never unlocked: the thread lives as long as the process.
	runtime.LockOSThread()
	for r := range s.req {
		r.done <- r.cmd.Start()
	}
}

// start is cmd.Start, forked from the spawner's thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	s.req <- spawnReq{cmd, done}
	return <-done
}
