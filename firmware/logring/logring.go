// Package logring keeps a node's most recent log records in memory, so the
// status page and `shoestring ctl overview` can show what happened lately
// on a box that has no disk log to read and no one at its console.
package logring

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Line is one kept record.
type Line struct {
	Time    time.Time
	Level   slog.Level
	Message string // the message followed by its attributes, key=value
}

// Ring holds the last N lines.
type Ring struct {
	mu    sync.Mutex
	lines []Line
	next  int
	full  bool
}

// New returns a ring of n lines.
func New(n int) *Ring { return &Ring{lines: make([]Line, n)} }

func (r *Ring) add(l Line) {
	r.mu.Lock()
	r.lines[r.next] = l
	r.next++
	if r.next == len(r.lines) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// Last returns up to n lines, oldest first.
func (r *Ring) Last(n int) []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []Line
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	if n > 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

// Handler returns a slog handler that records into the ring what next
// would emit, then passes it on.
func (r *Ring) Handler(next slog.Handler) slog.Handler {
	return &handler{ring: r, next: next}
}

type handler struct {
	ring   *Ring
	next   slog.Handler
	prefix string // attributes from WithAttrs, already formatted
	group  string
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	b.WriteString(h.prefix)
	rec.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return true
	})
	h.ring.add(Line{Time: rec.Time, Level: rec.Level, Message: b.String()})
	return h.next.Handle(ctx, rec)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		writeAttr(&b, h.group, a)
	}
	return &handler{ring: h.ring, next: h.next.WithAttrs(attrs), prefix: b.String(), group: h.group}
}

func (h *handler) WithGroup(name string) slog.Handler {
	g := name
	if h.group != "" {
		g = h.group + "." + name
	}
	return &handler{ring: h.ring, next: h.next.WithGroup(name), prefix: h.prefix, group: g}
}

func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := a.Key
		if group != "" && g != "" {
			g = group + "." + g
		} else if g == "" {
			g = group
		}
		for _, sub := range a.Value.Group() {
			writeAttr(b, g, sub)
		}
		return
	}
	key := a.Key
	if group != "" {
		key = group + "." + key
	}
	v := a.Value.String()
	if strings.ContainsAny(v, " \t\n\"=") {
		v = fmt.Sprintf("%q", v)
	}
	b.WriteString(" ")
	b.WriteString(key)
	b.WriteString("=")
	b.WriteString(v)
}
