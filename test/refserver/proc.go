package refserver

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

// Command is one process to start.
type Command struct {
	Name string   // for messages and logs: "knot", "nsd", "bird"…
	Argv []string // program and arguments
	// Prefix runs Argv through another program that execs it in place,
	// so that the pid is still Argv[0]'s: taskset, `ip netns exec NS`.
	Prefix []string
	Env    []string // added to the environment
	// LogFile, if set, receives the output (appended, after a line with
	// the time and command line); otherwise it is kept in memory.
	LogFile string
	// Detached processes get their own session and outlive the program
	// that started them (`lab up`); otherwise the kernel kills them if it
	// dies (Pdeathsig).
	Detached bool
}

// Proc is a running process, in its own process group so that stopping it
// also reaches the children it forked (NSD's server and xfrd).
type Proc struct {
	Name    string
	LogFile string    // "" when the output is kept in memory
	Started time.Time // just before fork: start-up times count from here

	cmd  *exec.Cmd
	argv []string
	mem  *testenv.SyncBuffer
	done chan struct{}
	err  error // Wait's result, valid once done is closed
	once sync.Once
	// graceful: Stop saw the process end by itself.
	graceful bool
}

// live holds every process not yet stopped, for KillAll.
var (
	liveMu sync.Mutex
	live   = map[*Proc]bool{}
)

// Start starts c. The caller stops the process (Stop or Kill), or KillAll
// does; tests use Run, which stops it when the test ends.
func Start(c Command) (*Proc, error) {
	argv := append(append([]string{}, c.Prefix...), c.Argv...)
	if len(argv) == 0 {
		return nil, fmt.Errorf("%s: no command", c.Name)
	}
	p := &Proc{Name: c.Name, LogFile: c.LogFile, argv: c.Argv, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	if len(c.Env) > 0 {
		p.cmd.Env = append(os.Environ(), c.Env...)
	}
	header := fmt.Sprintf("=== %s: %s\n", time.Now().Format(time.TimeOnly), strings.Join(argv, " "))
	var logf *os.File
	if c.LogFile != "" {
		f, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		logf = f
		defer logf.Close() // the child has its own descriptor
		logf.WriteString(header)
		p.cmd.Stdout, p.cmd.Stderr = logf, logf
	} else {
		p.mem = &testenv.SyncBuffer{}
		p.mem.Write([]byte(header))
		p.cmd.Stdout, p.cmd.Stderr = p.mem, p.mem
	}
	if c.Detached {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		// Its own group: a Ctrl-C on the terminal reaches us, not the
		// daemon, and Stop kills the whole group. Pdeathsig: no daemon
		// outlives a program that dies without cleaning up.
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	p.Started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", c.Name, err)
	}
	liveMu.Lock()
	live[p] = true
	liveMu.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Run starts c for a test: it fails the test if c cannot start, stops the
// process when the test ends, and then shows the end of its log if the
// test failed.
func Run(t testing.TB, c Command) *Proc {
	t.Helper()
	p, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.Stop(5 * time.Second) {
			t.Logf("%s did not stop on SIGTERM within 5 s; killed", p.Name)
		}
		if t.Failed() {
			t.Logf("--- %s log ---\n%s", p.Name, p.Tail(80))
		}
	})
	return p
}

// Pid is the process id (of Argv[0]: a Prefix execs it in place).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Args is the command line it was started with, without Prefix: Start
// again with it to restart.
func (p *Proc) Args() []string { return p.argv }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process ended (nil while it runs, and after exit status 0).
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Wait waits up to d for the process to end and reports whether it did.
func (p *Proc) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Signal sends sig to the process (not its group).
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop asks the process to end (SIGTERM to the main process, so that each
// daemon shuts down its own way: NSD's main process stops its children,
// Shoestring closes its store), waits up to grace, then kills whatever is
// left of its process group. It reports whether the process ended by
// itself within grace (the same answer again on a second call; false
// after Kill).
func (p *Proc) Stop(grace time.Duration) (graceful bool) {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		p.graceful = p.Wait(grace)
		p.reap()
	})
	return p.graceful
}

// Kill kills the process and its group at once (SIGCONT too, so that a
// stopped one goes) and waits for it.
func (p *Proc) Kill() {
	p.once.Do(p.reap)
}

// reap kills the group, also after a clean exit: children outliving the
// main process must go.
func (p *Proc) reap() {
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(-pid, syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	liveMu.Lock()
	delete(live, p)
	liveMu.Unlock()
}

// KillAll kills every process Start started that is not stopped yet,
// without grace: for a command's clean-up on failure and interrupt.
func KillAll() {
	liveMu.Lock()
	ps := make([]*Proc, 0, len(live))
	for p := range live {
		ps = append(ps, p)
	}
	liveMu.Unlock()
	for _, p := range ps {
		p.Kill()
	}
}

// Log returns everything the process has written so far.
func (p *Proc) Log() string {
	if p.mem != nil {
		return p.mem.String()
	}
	b, err := os.ReadFile(p.LogFile)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Tail returns the last n lines of the process's output.
func (p *Proc) Tail(n int) string { return Tail(p.Log(), n) }

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
