package bundle

import (
	"errors"
	"fmt"
	"io"
)

// Target receives a bundle's parts: a slot, as the slot package writes
// it. It never gets a byte that is not verified.
type Target interface {
	// Part starts writing part p, from offset start in it (0 unless an
	// install resumes; then the bytes before start were written and
	// committed to the target's own record by an earlier, interrupted
	// install).
	Part(p Part, start int64) (PartWriter, error)
}

// PartWriter writes one part. Commit means every byte of the part has
// been written and verified; it does not make the slot bootable (that is
// the slot package's business once Install returns nil).
type PartWriter interface {
	io.Writer
	Commit() error
	// Abort gives up the part, with the reason.
	Abort(reason error)
}

// Install verifies bundle r and streams its parts into t; see
// Reader.Install. The manifest is returned once verified, also when a
// part then fails: keep its Note to resume (Resume).
func Install(r io.Reader, keys *Keys, o Options, t Target) (*Manifest, error) {
	rd, err := Open(r, keys, o)
	if err != nil {
		return nil, err
	}
	return rd.m, rd.Install(t)
}

// Install streams the parts still to read into t: each part is
// committed once all of it is verified (and, for the last, once the
// bundle is seen to end there), aborted on the first error.
func (r *Reader) Install(t Target) error {
	for {
		s, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		w, err := t.Part(s.Part, s.Start)
		if err != nil {
			return fmt.Errorf("part %s: %w", s.Name, err)
		}
		// Copy through a plain Writer so a ReaderFrom target cannot read
		// past what Read hands out; Read only hands out verified chunks.
		_, err = io.CopyBuffer(writerOnly{w}, s, make([]byte, 32<<10))
		if err == nil && s.Index == len(r.m.Parts)-1 {
			err = r.checkEnd()
		}
		if err != nil {
			w.Abort(err)
			return err
		}
		if err := w.Commit(); err != nil {
			return fmt.Errorf("part %s: commit: %w", s.Name, err)
		}
		r.cur = nil
	}
}

type writerOnly struct{ io.Writer }

// Verify reads a whole bundle, checking every chunk, and returns its
// manifest (bundle verify).
func Verify(r io.Reader, keys *Keys, o Options) (*Manifest, error) {
	rd, err := Open(r, keys, o)
	if err != nil {
		return nil, err
	}
	for {
		s, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rd.m, nil
		}
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(io.Discard, s); err != nil {
			return nil, err
		}
	}
}
