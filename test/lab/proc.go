package lab

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/shoestring-dns/shoestring/test/refserver"
)

// Proc is a process the lab started in one of its namespaces (package
// refserver's).
type Proc = refserver.Proc

// start runs argv in namespace ns with `ip netns exec`, which execs argv
// in place: the pid is argv's, so signals reach it directly. Its output is
// appended to name.log in the lab's directory.
func (l *Lab) start(name, ns string, argv ...string) (*Proc, error) {
	return refserver.Start(refserver.Command{Name: name, Argv: argv, Prefix: l.in(ns),
		LogFile: filepath.Join(l.opts.Dir, name+".log"), Detached: l.opts.Detached})
}

// in is the command line prefix that runs a program in namespace ns.
func (l *Lab) in(ns string) []string { return []string{l.tools["ip"], "netns", "exec", ns} }

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
