package pid1

import (
	"context"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// reapZombies reaps orphans. Every process whose parent dies is
// re-parented to process 1 and stays a zombie until it waits for it. But
// a blanket wait4(-1) would also take the exit status of a child some
// package started with os/exec (Tailscale's code links it), whose Wait
// would then fail; so only zombies that have stayed zombies for a while —
// which a Wait in progress would already have collected — are reaped, by
// pid, found in /proc.
func reapZombies(ctx context.Context) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, unix.SIGCHLD)
	defer signal.Stop(ch)
	seen := map[int]time.Time{} // zombie children, first seen
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-tick.C:
		}
		now := time.Now()
		live := map[int]bool{}
		for _, pid := range zombieChildren() {
			live[pid] = true
			first, ok := seen[pid]
			if !ok {
				seen[pid] = now
				continue
			}
			if now.Sub(first) >= 2*time.Second {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
				delete(seen, pid)
			}
		}
		for pid := range seen {
			if !live[pid] {
				delete(seen, pid)
			}
		}
	}
}

// zombieChildren lists our children in state Z.
func zombieChildren() []int {
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) S ppid ...": comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] != "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == self {
			out = append(out, pid)
		}
	}
	return out
}
