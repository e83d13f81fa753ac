// Command lab brings the anycast lab (package lab) up for a person to play
// with, and down again. It needs root.
//
//	lab [-bin out/shoestring] [-dir DIR]       up, wait for Ctrl-C, down (make lab)
//	lab [-bin out/shoestring] [-dir DIR] up    up, and leave it running
//	lab down                                   tear a running lab down
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/shoestring-dns/shoestring/test/lab"
)

// name prefixes the namespaces of a lab started by hand.
const name = "sslab"

func main() {
	bin := flag.String("bin", "out/shoestring", "the shoestring binary the nodes run")
	dir := flag.String("dir", "/run/shoestring-lab", "configs, logs, node data, BIRD's control socket")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: lab [-bin PATH] [-dir DIR] [up|down]\n\nWithout a command: up, wait for Ctrl-C, down.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(flag.Arg(0), *bin, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

func run(cmd, bin, dir string) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	switch cmd {
	case "down":
		lab.RemoveNamed(name)
		fmt.Println("lab: down (logs and configs stay in " + dir + ")")
		return nil
	case "", "up":
	default:
		return fmt.Errorf("unknown command %q (up, down)", cmd)
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("%s: %w (make build)", bin, err)
	}
	lab.RemoveNamed(name)
	os.RemoveAll(dir)
	l, err := lab.Up(lab.Options{Name: name, Dir: dir, Binary: abs, Detached: cmd == "up", Log: os.Stdout})
	if err != nil {
		return err
	}
	fmt.Println("lab: waiting for BGP to converge…")
	start := time.Now()
	if err := l.WaitConverged(60 * time.Second); err != nil {
		l.Down()
		return err
	}
	fmt.Printf("lab: converged after %v\n\n", time.Since(start).Round(time.Millisecond))
	for _, p := range lab.Prefixes() {
		hops, _ := l.Nexthops(p)
		fmt.Printf("  router: %-14v via %v\n", p, hops)
	}
	printHowTo(l, abs, dir)
	if cmd == "up" {
		fmt.Println("\nTear it down with: go run ./test/lab/cmd/lab down   (or make lab-down)")
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println("\nCtrl-C tears the lab down.")
	<-ctx.Done()
	fmt.Println("\nlab: tearing down")
	l.Down()
	return nil
}

func printHowTo(l *lab.Lab, bin, dir string) {
	n1 := l.Nodes[0]
	fmt.Printf(`
Play with it (as root):
  ip netns exec %[1]s dig @%[2]s +nsid example.test SOA        # answered by one of n1..n3
  ip netns exec %[1]s dig @%[3]s +nsid www.example.test AAAA
  ip -n %[4]s route show %[2]s; ip -n %[4]s -6 route show %[3]s   # the router's multipath routes
  birdc -s %[5]s/bird.ctl show route all                     # what BIRD got, with communities
  ip netns exec %[4]s gobgp -p 50051 global rib -a ipv4       # the same at gobgpd
  ip netns exec %[6]s %[7]s ctl prefixes|sessions|network
  ip netns exec %[6]s %[7]s ctl drain        # GRACEFUL_SHUTDOWN, then withdrawn
  ip netns exec %[6]s %[7]s ctl restore
  kill -STOP %[8]d   (n1's pid; BFD drops it within 0.5 s; kill -CONT %[8]d)
Logs and configs: %[5]s
`, l.ClientNS, lab.Anycast4, lab.Anycast6, l.RouterNS, dir, n1.NS, bin, n1.Proc.Pid())
}
