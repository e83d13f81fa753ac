package zone

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxErrors is how many errors an ErrorList holds before it summarises the
// rest: a zone with one systematic mistake can produce an error per record,
// and an operator needs the first few, not a hundred thousand lines.
const MaxErrors = 100

// Error is one problem found while parsing or validating a zone, with the
// place in the master file when the record came from one.
type Error struct {
	Pos Position
	Msg string
}

func (e *Error) Error() string {
	switch {
	case e.Pos.File != "":
		return e.Pos.String() + ": " + e.Msg
	case e.Pos.Line > 0:
		return "line " + strconv.Itoa(e.Pos.Line) + ": " + e.Msg
	}
	return e.Msg
}

// ErrorList is every problem found in a zone, in file order. Parse and
// Validate return all of them at once, so the API can hand an operator the
// whole list instead of one error per attempt.
type ErrorList []*Error

func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// collector gathers errors keyed by the index of the record they concern,
// so errors found by different passes still come out in file order.
type collector struct {
	errs    []indexed
	dropped int // errors past maxCollected: counted, not kept
}

// maxCollected bounds the errors kept before they are sorted: a
// million-record zone with a systematic mistake must not hold a million
// errors. The passes find errors roughly in file order, so the first
// MaxErrors shown are still the first in the file, or nearly.
const maxCollected = 10 * MaxErrors

type indexed struct {
	idx int // record index, -1 for zone-wide errors (listed first)
	err *Error
}

func (c *collector) add(idx int, pos Position, format string, args ...any) {
	if len(c.errs) >= maxCollected {
		c.dropped++
		return
	}
	c.errs = append(c.errs, indexed{idx, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}})
}

// list returns the errors in order, capped at MaxErrors with a final entry
// saying how many were left out; nil when there were none.
func (c *collector) list() error {
	if len(c.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(c.errs, func(a, b indexed) int { return cmp.Compare(a.idx, b.idx) })
	n := min(len(c.errs), MaxErrors)
	l := make(ErrorList, 0, n+1)
	for _, e := range c.errs[:n] {
		l = append(l, e.err)
	}
	if more := len(c.errs) - n + c.dropped; more > 0 {
		l = append(l, &Error{Msg: fmt.Sprintf("%d more errors not shown", more)})
	}
	return l
}
