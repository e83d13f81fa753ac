package tenant

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCPUList(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "0-3": "0-3", "3,0-1": "0-1,3", "1,2,3,5": "1-3,5", "7-7": "7"} {
		set, err := parseCPUs(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := formatCPUs(set); got != want {
			t.Errorf("%q: formatted %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "a", "3-1", "-1", "0,", "1024"} {
		if _, err := parseCPUs(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestConfineHost confines this test process as the host confines itself,
// and checks every thread, also one started afterwards, then undoes it.
func TestConfineHost(t *testing.T) {
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Count() < 2 {
		t.Skip("one core: nothing to confine to")
	}
	first := -1
	for c := range len(orig) * 64 {
		if orig.IsSet(c) {
			first = c
			break
		}
	}
	before, err := confineHost(formatCPUs(orig) + "," + "1000") // a core it does not have is left out
	if err != nil {
		t.Fatal(err)
	}
	defer SetProcessAffinity(&orig)
	if before != orig {
		t.Errorf("before: %s, want %s", formatCPUs(before), formatCPUs(orig))
	}
	one := formatCPUs(func() unix.CPUSet { var s unix.CPUSet; s.Set(first); return s }())
	if _, err := confineHost(one); err != nil {
		t.Fatal(err)
	}
	// A thread the runtime starts from now on inherits it: one
	// locked to a goroutine that waits makes the runtime start another.
	done := make(chan struct{})
	locked := make(chan struct{})
	go func() {
		runtime.LockOSThread() // ends with the goroutine
		close(locked)
		<-done
	}()
	defer close(done)
	<-locked
	runtime.Gosched()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue // ended
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok && strings.TrimSpace(v) != one {
				t.Errorf("thread %s on cores %s, want %s", task.Name(), strings.TrimSpace(v), one)
			}
		}
	}
	if _, err := confineHost("1023"); err == nil || !strings.Contains(err.Error(), "none of these cores") {
		t.Errorf("a core it may not run on: %v", err)
	}
}
