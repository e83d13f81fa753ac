package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// clockFile keeps the last known time on the data partition. Boxes
// without a battery-backed RTC (every Pi) boot in 1970; certificate
// checks (the overlay), zone signatures and SOA timers need a sane clock
// before NTP answers, so the clock is set forward to the newest of the
// image's build time and this file.
func clockFile() string { return filepath.Join(systemDir, "clock") }

// raiseClock sets the clock to t if it is behind it. It never moves the
// clock back: a saved time is a floor, not a measurement.
func raiseClock(t time.Time, why string, log *slog.Logger) {
	now := time.Now()
	if !now.Before(t) {
		return
	}
	tv := unix.NsecToTimeval(t.UnixNano())
	if err := unix.Settimeofday(&tv); err != nil {
		log.Warn("clock: cannot set", "err", err)
		return
	}
	log.Info("clock set forward", "from", now.UTC().Format(time.RFC3339), "to", t.UTC().Format(time.RFC3339), "source", why)
}

// readSavedClock returns the time saved in the clock file.
func readSavedClock(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	return time.Unix(n, 0), nil
}

// saveClock writes the current time to the clock file (atomically).
func saveClock(path string) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(time.Now().Unix(), 10)+"\n"), 0o644); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err == nil {
		f.Sync()
		f.Close()
	}
	return os.Rename(tmp, path)
}

// keepClock saves the time every interval, so that after a power cut the
// box comes back no further behind than that. Fifteen minutes is a write
// the SD card does not notice.
func keepClock(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := saveClock(clockFile()); err != nil {
				return err
			}
		}
	}
}
