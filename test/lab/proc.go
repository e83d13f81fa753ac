package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a process the lab started in one of its namespaces.
type Proc struct {
	Name    string
	LogPath string // its stdout and stderr
	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	err     error
}

// start runs argv in namespace ns with `ip netns exec`, which execs argv
// in place: the pid is argv's, so signals reach it directly.
func (l *Lab) start(name, ns string, argv ...string) (*Proc, error) {
	p := &Proc{Name: name, LogPath: filepath.Join(l.opts.Dir, name+".log"), done: make(chan struct{})}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "=== %s: %s\n", time.Now().Format(time.TimeOnly), strings.Join(argv, " "))
	p.cmd = exec.Command(l.tools["ip"], append([]string{"netns", "exec", ns}, argv...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if l.opts.Detached {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		// Should the lab's process die, the kernel kills its daemons.
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	logf.Close() // the child has its own descriptor
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig.
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
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

// Kill kills the process (SIGCONT first, so that a stopped one goes too)
// and waits for it.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.Wait(5 * time.Second)
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Start runs the node (again, after a kill: its store is kept).
func (n *Node) Start() error {
	if n.Proc != nil && !n.Proc.Exited() {
		return fmt.Errorf("%s is running", n.Name)
	}
	p, err := n.lab.start(n.Name, n.NS, n.lab.opts.Binary, "run", "-config", n.Config)
	if err != nil {
		return err
	}
	n.Proc = p
	return nil
}

// Ctl runs `shoestring ctl` against the node's management API, in its
// namespace.
func (n *Node) Ctl(args ...string) (string, error) {
	argv := append([]string{"netns", "exec", n.NS, n.lab.opts.Binary, "ctl", "-api", MgmtAPI}, args...)
	out, err := exec.Command(n.lab.tools["ip"], argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: shoestring ctl %s: %v: %s", n.Name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
