package pid1

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// copyKernelLog copies kernel messages (/dev/kmsg, from boot on) into the
// log ring, so an I/O error, an OOM kill or a link flap is in the log the
// management API and the data partition keep. The console has them from
// the kernel already, so they go to the ring only. Debug messages are
// left out.
func copyKernelLog(ctx context.Context, ring *logRing) error {
	f, err := os.Open("/dev/kmsg")
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	w := ringWriter{ring: ring}
	log := slog.New(slog.NewTextHandler(w, nil))
	buf := make([]byte, 8192)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// EPIPE: messages were overwritten before we read them.
			if errors.Is(err, unix.EPIPE) {
				continue
			}
			return err
		}
		level, t, msg, ok := parseKmsg(string(buf[:n]), bootTime())
		if !ok || level > 6 {
			continue
		}
		rec := slog.NewRecord(t, kernelLevel(level), "kernel: "+msg, 0)
		log.Handler().Handle(ctx, rec)
	}
}

// parseKmsg parses one /dev/kmsg record: "PRI,SEQ,USEC,FLAGS;MESSAGE\n"
// followed by optional " KEY=VALUE" continuation lines.
func parseKmsg(rec string, boot time.Time) (level int, t time.Time, msg string, ok bool) {
	head, rest, found := strings.Cut(rec, ";")
	if !found {
		return 0, time.Time{}, "", false
	}
	f := strings.Split(head, ",")
	if len(f) < 3 {
		return 0, time.Time{}, "", false
	}
	pri, err1 := strconv.Atoi(f[0])
	usec, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, time.Time{}, "", false
	}
	msg, _, _ = strings.Cut(rest, "\n")
	return pri & 7, boot.Add(time.Duration(usec) * time.Microsecond), msg, true
}

func kernelLevel(l int) slog.Level {
	switch {
	case l <= 3:
		return slog.LevelError
	case l == 4:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// bootTime is the wall-clock time the kernel started, for kmsg's
// monotonic timestamps (recomputed each time: NTP may step the clock).
func bootTime() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Now()
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
}
