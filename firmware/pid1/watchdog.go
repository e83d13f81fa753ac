package pid1

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// watchdog feeds the hardware watchdog only while the node is healthy:
// a node that hangs — or whose health loop stops — is reset by the
// hardware instead of being kept alive by a blind feeder. It is fed
// regardless during the boot grace period (loading a big store) and
// during a planned stop (draining takes a while), both bounded.
type watchdog struct {
	dev     string
	timeout time.Duration
	grace   time.Duration
	healthy func() (bool, string)
	log     *slog.Logger

	mu       sync.Mutex
	f        *os.File
	armed    time.Time
	stopping time.Time // deadline of a planned stop; zero otherwise
	state    api.WatchdogInfo
}

// open arms the watchdog and sets its timeout; the driver may round it.
func (w *watchdog) open() error {
	f, err := os.OpenFile(w.dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	secs := int(w.timeout / time.Second)
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.WDIOC_SETTIMEOUT, secs); err != nil {
		w.log.Warn("watchdog: cannot set timeout; using the driver's", "err", err)
	}
	if got, err := unix.IoctlGetInt(int(f.Fd()), unix.WDIOC_GETTIMEOUT); err == nil && got > 0 {
		w.timeout = time.Duration(got) * time.Second
	}
	w.mu.Lock()
	w.f, w.armed = f, time.Now()
	w.state = api.WatchdogInfo{Device: w.dev, Timeout: w.timeout.String(), Armed: true}
	w.mu.Unlock()
	w.log.Info("watchdog armed", "device", w.dev, "timeout", w.timeout, "boot_grace", w.grace)
	return nil
}

// run feeds every quarter timeout while the node is healthy.
func (w *watchdog) run(ctx context.Context) error {
	t := time.NewTicker(max(w.timeout/4, time.Second))
	defer t.Stop()
	starving := false
	for {
		ok, why := w.shouldFeed()
		if ok {
			w.feed()
			if starving {
				w.log.Info("watchdog: node healthy again, feeding")
			}
		} else if !starving {
			w.log.Error("watchdog: node unhealthy, not feeding; the box resets unless it recovers", "why", why, "in", w.timeout)
		}
		starving = !ok
		w.mu.Lock()
		if ok {
			w.state.Starved = ""
		} else {
			w.state.Starved = why
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (w *watchdog) shouldFeed() (bool, string) {
	w.mu.Lock()
	stopping, armed, healthy := w.stopping, w.armed, w.healthy
	w.mu.Unlock()
	switch {
	case !stopping.IsZero():
		if time.Now().Before(stopping) {
			return true, ""
		}
		return false, "planned stop past its deadline"
	case time.Since(armed) < w.grace:
		return true, ""
	}
	if healthy == nil {
		return false, "node not running"
	}
	return healthy()
}

func (w *watchdog) feed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return
	}
	if err := unix.IoctlWatchdogKeepalive(int(w.f.Fd())); err != nil {
		// Drivers without the ioctl take a write.
		w.f.Write([]byte{0})
	}
	w.state.LastFed = time.Now()
}

// setHealth points the feeder at the running node (nil: none running).
func (w *watchdog) setHealth(fn func() (bool, string)) {
	w.mu.Lock()
	w.healthy = fn
	w.mu.Unlock()
}

// stop feeds unconditionally until deadline: a planned stop.
func (w *watchdog) stop(deadline time.Time) {
	w.mu.Lock()
	w.stopping = deadline
	w.mu.Unlock()
	w.feed()
}

// disarm closes the device with the magic 'V', which stops the timer, so
// a poweroff is not undone by a reset halfway.
func (w *watchdog) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return
	}
	w.f.Write([]byte("V"))
	w.f.Close()
	w.f = nil
	w.state.Armed = false
}

func (w *watchdog) status() api.WatchdogInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}
