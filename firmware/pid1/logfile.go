package pid1

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// logFile persists the ring to the data partition, sparing the SD card:
// lines are written in batches (every flush interval, within seconds
// after an error), the file is rotated to one previous file at its size
// bound, and a byte budget per hour caps the writes — past it, lines stay
// in RAM only and the file records how many were skipped.
type logFile struct {
	ring     *logRing
	path     string // current file; path+".1" is the previous one
	maxBytes int64
	every    time.Duration
	perHour  int64 // budget, bytes per hour

	mu      sync.Mutex
	nextSeq uint64
	tokens  float64
	refill  time.Time
	skipped int // lines not written since the last written line
}

func newLogFile(ring *logRing, dir string, maxBytes int64, every time.Duration, perHour int64) *logFile {
	return &logFile{ring: ring, path: filepath.Join(dir, "shoestring.log"), maxBytes: maxBytes, every: every,
		perHour: perHour, tokens: float64(perHour), refill: time.Now()}
}

// run flushes until ctx ends, then once more.
func (f *logFile) run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		return err
	}
	t := time.NewTicker(f.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return f.flush()
		case <-t.C:
		case <-f.ring.urgent:
			// Let the lines that follow an error arrive too.
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
		if err := f.flush(); err != nil {
			return err
		}
	}
}

// flush appends the lines logged since the last flush.
func (f *logFile) flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	lines, next, lost := f.ring.since(f.nextSeq, 0)
	f.nextSeq = next
	if len(lines) == 0 && lost == 0 {
		return nil
	}
	now := time.Now()
	f.tokens += now.Sub(f.refill).Hours() * float64(f.perHour)
	f.refill = now
	if f.tokens > float64(f.perHour) {
		f.tokens = float64(f.perHour)
	}
	var b strings.Builder
	if lost > 0 {
		f.skipped += int(lost)
	}
	for _, l := range lines {
		n := float64(len(l.Text) + 1)
		if f.tokens < n {
			f.skipped++
			continue
		}
		if f.skipped > 0 {
			note := fmt.Sprintf("time=%s level=WARN msg=\"log lines not written to disk\" count=%d reason=\"write budget or ring overflow\"\n",
				now.UTC().Format(time.RFC3339), f.skipped)
			b.WriteString(note)
			f.tokens -= float64(len(note))
			f.skipped = 0
		}
		b.WriteString(l.Text)
		b.WriteByte('\n')
		f.tokens -= n
	}
	if b.Len() == 0 {
		return nil
	}
	return f.append([]byte(b.String()))
}

// append writes to the file, rotating first if it would pass its bound.
func (f *logFile) append(p []byte) error {
	if fi, err := os.Stat(f.path); err == nil && fi.Size()+int64(len(p)) > f.maxBytes {
		if err := os.Rename(f.path, f.path+".1"); err != nil {
			return err
		}
	}
	fh, err := os.OpenFile(f.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fh.Write(p); err != nil {
		fh.Close()
		return err
	}
	// One sync per batch: what was flushed survives a power cut.
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// tail returns the last n lines persisted, previous file included.
func (f *logFile) tail(n int) ([]string, error) {
	var all []string
	for _, p := range []string{f.path + ".1", f.path} {
		b, err := os.ReadFile(p)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		all = append(all, strings.Split(strings.TrimRight(string(b), "\n"), "\n")...)
	}
	if n > 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	return all, nil
}
