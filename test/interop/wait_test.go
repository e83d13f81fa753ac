package interop

import (
	"testing"
	"time"
)

// waitFor polls cond every few milliseconds until it holds, failing the
// test with what after timeout; it returns how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v (last seen: %s)", what, timeout, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
