package image

import (
	"fmt"
	"io"
	"time"
)

// progress prints what the build is doing: a line per step, with how
// long it took, so a long download or compression is never silent.
type progress struct {
	w     io.Writer
	start time.Time
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w, start: time.Now()}
}

func (p *progress) step(format string, args ...any) {
	fmt.Fprintf(p.w, "[%5.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

func (p *progress) done(format string, args ...any) {
	fmt.Fprintf(p.w, "[%5.1fs]   %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// mib formats a size in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
