package pid1

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// logLine is one line of the log, numbered in order since boot.
type logLine struct {
	Seq  uint64 `json:"seq"`
	Text string `json:"text"`
}

// logRing keeps the most recent log lines in RAM, bounded in bytes: it is
// what the management API shows, and what the persister writes out.
type logRing struct {
	mu       sync.Mutex
	lines    []logLine // lines[head:] are live
	head     int
	bytes    int
	max      int
	next     uint64        // Seq of the next line
	urgent   chan struct{} // an error was logged: persist soon
	appended chan struct{} // closed and replaced on every line (followers)
}

func newLogRing(maxBytes int) *logRing {
	return &logRing{max: maxBytes, urgent: make(chan struct{}, 1), appended: make(chan struct{})}
}

// add appends a line (without its newline).
func (r *logRing) add(text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, logLine{Seq: r.next, Text: text})
	r.next++
	r.bytes += len(text) + 1
	for r.bytes > r.max && r.head < len(r.lines)-1 {
		r.bytes -= len(r.lines[r.head].Text) + 1
		r.lines[r.head] = logLine{}
		r.head++
	}
	// Compact once the dead prefix is the larger part.
	if r.head > len(r.lines)/2 && r.head > 64 {
		r.lines = append(r.lines[:0:0], r.lines[r.head:]...)
		r.head = 0
	}
	close(r.appended)
	r.appended = make(chan struct{})
}

// setMax changes the bound (the config is read after logging starts).
func (r *logRing) setMax(maxBytes int) {
	r.mu.Lock()
	r.max = maxBytes
	r.mu.Unlock()
}

// markUrgent asks the persister to write soon.
func (r *logRing) markUrgent() {
	select {
	case r.urgent <- struct{}{}:
	default:
	}
}

// since returns up to limit lines with Seq >= seq (the newest ones when
// more are available and limit > 0), the Seq to ask for next, and how many
// lines after seq were already gone from the ring.
func (r *logRing) since(seq uint64, limit int) (out []logLine, next uint64, lost uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := r.lines[r.head:]
	if len(live) > 0 && seq < live[0].Seq {
		lost = live[0].Seq - seq
		seq = live[0].Seq
	}
	i := 0
	if len(live) > 0 {
		i = int(seq - live[0].Seq)
	}
	if i > len(live) {
		i = len(live)
	}
	sel := live[i:]
	if limit > 0 && len(sel) > limit {
		sel = sel[len(sel)-limit:]
	}
	return append([]logLine(nil), sel...), r.next, lost
}

// wait returns a channel closed when the next line is added.
func (r *logRing) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appended
}

// ringWriter feeds whole lines written by a slog text handler (one Write
// per record) to the ring, and to the console when set.
type ringWriter struct {
	ring    *logRing
	console io.Writer
}

func (w ringWriter) Write(p []byte) (int, error) {
	if w.console != nil {
		w.console.Write(p)
	}
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.ring.add(l)
	}
	return len(p), nil
}

// urgentHandler marks the ring urgent after an error is logged, so that
// what led up to a failure reaches the disk before a possible crash.
type urgentHandler struct {
	slog.Handler
	ring *logRing
}

func (h urgentHandler) Handle(ctx context.Context, rec slog.Record) error {
	err := h.Handler.Handle(ctx, rec)
	if rec.Level >= slog.LevelError {
		h.ring.markUrgent()
	}
	return err
}

func (h urgentHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return urgentHandler{h.Handler.WithAttrs(as), h.ring}
}

func (h urgentHandler) WithGroup(g string) slog.Handler {
	return urgentHandler{h.Handler.WithGroup(g), h.ring}
}

// newLogger logs as text to the console and the ring.
func newLogger(ring *logRing, console io.Writer) *slog.Logger {
	h := slog.NewTextHandler(ringWriter{ring: ring, console: console}, &slog.HandlerOptions{Level: slog.LevelInfo})
	return slog.New(urgentHandler{h, ring})
}
