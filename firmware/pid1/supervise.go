package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// supervisor runs the box's services, restarting one that returns or
// panics (in its own goroutine) after a backoff that doubles from one
// second to a minute, and starts over once a run has lasted a minute.
// A panic in a goroutine a service starts itself cannot be caught; it
// ends PID 1, and the kernel reboots (panic=10).
type supervisor struct {
	log *slog.Logger
	wg  sync.WaitGroup

	mu       sync.Mutex
	restarts map[string]int
}

func newSupervisor(log *slog.Logger) *supervisor {
	return &supervisor{log: log, restarts: map[string]int{}}
}

const (
	backoffMin    = time.Second
	backoffMax    = time.Minute
	backoffStable = time.Minute
)

// nextBackoff returns the wait before the next start after a run that
// lasted ran, given the previous wait.
func nextBackoff(prev, ran time.Duration) time.Duration {
	if ran >= backoffStable || prev == 0 {
		return backoffMin
	}
	return min(2*prev, backoffMax)
}

// start runs fn under supervision until ctx ends.
func (s *supervisor) start(ctx context.Context, name string, fn func(context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var wait time.Duration
		for {
			began := time.Now()
			err := s.runOnce(ctx, fn)
			if ctx.Err() != nil {
				return
			}
			wait = nextBackoff(wait, time.Since(began))
			s.mu.Lock()
			s.restarts[name]++
			n := s.restarts[name]
			s.mu.Unlock()
			s.log.Error("service stopped; restarting", "service", name, "err", err, "after", wait, "restarts", n)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
}

func (s *supervisor) runOnce(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	if err := fn(ctx); err != nil {
		return err
	}
	return fmt.Errorf("returned")
}

// wait waits for every service to return (after ctx ends).
func (s *supervisor) wait(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// counts returns how often each service was restarted.
func (s *supervisor) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.restarts {
		out[k] = v
	}
	return out
}
