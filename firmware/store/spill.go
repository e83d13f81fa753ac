package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// An import bigger than Options.ImportSpill is not held whole until
// Commit sorts it: each batch of that size is sorted as Commit sorts and
// written out as a run, and Commit merges the runs and the last batch
// back into the one order the in-memory sort gives (key, then arrival).
// The runs go to a file in the store's own directory, on the store's
// filesystem: the system's temporary directory is RAM on our boxes.
// That file has no name while it is used (O_TMPFILE, or unlinked as soon
// as it is made), so a crash or power cut leaves nothing behind.

const (
	// spillDefault is Options.ImportSpill when not set. An import holds
	// some 90 bytes a record (BenchmarkImportFileMillion's 1M records:
	// 90 MiB, with the room Expect made), and a spill is that much
	// written to the SD card, which wears out, at every new version:
	// zones up to a million records or so do not spill. (Time is not
	// the reason: that benchmark spilling at 64 MiB took as long, on a
	// VM's disk with the page cache to absorb the writes.) On a 512 MB
	// box the budget (zones/budget.go) refuses a zone before its import
	// holds this much; the threshold bounds an import where the budget
	// allows more, or there is none.
	spillDefault = 128 << 20
	// runBufSize is the read buffer of each run being merged: more
	// than the largest record (a 64 KiB RDATA and its names).
	runBufSize = 128 << 10
	// spillBufSize is the write buffer of a run.
	spillBufSize = 256 << 10
	// maxFanIn bounds the runs merged at once (read buffers, and
	// descriptors' worth of reads): when a spill makes that many, they
	// are merged into one run of a new file first.
	maxFanIn = 32
	// spillHdr is a record's header in a run: its length (as held, see
	// Import.chunks), arrival sequence, file index and line.
	spillHdr = 4 + 4 + 2 + 4
	// spillPattern names a spill file made where O_TMPFILE is not
	// supported, for the moment between its creation and its unlink;
	// Open removes any a crash left.
	spillPattern = ".import-spill-*"
)

// spill is an import's runs: sorted segments of one unnamed file.
type spill struct {
	dir  string
	f    *os.File
	end  int64 // the file's size
	runs []segment
	wbuf []byte   // a run being written
	bufs [][]byte // read buffers, one a run merged
}

type segment struct{ off, end int64 }

// createSpill makes an unnamed file in dir.
func createSpill(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(import spill)")), nil
	}
	f, err := os.CreateTemp(dir, spillPattern)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// removeSpillLeftovers removes spill files a crash left in dir (only
// possible where O_TMPFILE is not supported, between a file's creation
// and its unlink).
func removeSpillLeftovers(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, spillPattern))
	for _, n := range names {
		os.Remove(n)
	}
}

func (sp *spill) errorf(err error) error {
	return fmt.Errorf("import spill in %s: %w", sp.dir, err)
}

// startRun starts writing a run at the end of the file, making the file
// first.
func (sp *spill) startRun() error {
	if sp.f == nil {
		f, err := createSpill(sp.dir)
		if err != nil {
			return sp.errorf(err)
		}
		sp.f, sp.end = f, 0
	}
	if sp.wbuf == nil {
		sp.wbuf = make([]byte, 0, spillBufSize)
	}
	sp.runs = append(sp.runs, segment{off: sp.end, end: sp.end})
	return nil
}

// put appends a record (raw: as Import.chunks hold it) to the run being
// written.
func (sp *spill) put(seq uint32, p importPos, raw []byte) error {
	if len(sp.wbuf)+spillHdr+len(raw) > cap(sp.wbuf) {
		if err := sp.flush(); err != nil {
			return err
		}
	}
	b := sp.wbuf
	b = binary.BigEndian.AppendUint32(b, uint32(len(raw)))
	b = binary.BigEndian.AppendUint32(b, seq)
	b = binary.BigEndian.AppendUint16(b, p.file)
	b = binary.BigEndian.AppendUint32(b, p.line)
	sp.wbuf = append(b, raw...)
	return nil
}

// flush writes what put buffered.
func (sp *spill) flush() error {
	n, err := sp.f.WriteAt(sp.wbuf, sp.end)
	sp.end += int64(n)
	sp.runs[len(sp.runs)-1].end = sp.end
	sp.wbuf = sp.wbuf[:0]
	if err != nil {
		return sp.errorf(err)
	}
	return nil
}

// compact merges the runs into one, in a new file, when there are as
// many as are merged at once; the old file goes (its space with it).
func (sp *spill) compact() error {
	if len(sp.runs) < maxFanIn {
		return nil
	}
	var m merger
	sp.readers(&m, nil)
	old := sp.f
	sp.f, sp.runs = nil, nil
	defer old.Close()
	if err := sp.startRun(); err != nil {
		return err
	}
	for {
		r, err := m.head()
		if err != nil {
			return err
		}
		if r == nil {
			return sp.flush()
		}
		if err := sp.put(r.seq, r.pos, r.raw); err != nil {
			return err
		}
		m.advance()
	}
}

// readers sets m up to merge the runs, and mem (the last batch, sorted)
// if not nil, from their starts.
func (sp *spill) readers(m *merger, mem *Import) {
	m.rs = m.rs[:0]
	for i, s := range sp.runs {
		if i == len(sp.bufs) {
			sp.bufs = append(sp.bufs, make([]byte, runBufSize))
		}
		m.rs = append(m.rs, runReader{sp: sp, f: sp.f, off: s.off, end: s.end, buf: sp.bufs[i]})
	}
	if mem != nil {
		m.rs = append(m.rs, runReader{im: mem})
	}
	m.start()
}

func (sp *spill) close() {
	if sp.f != nil {
		sp.f.Close()
		sp.f = nil
	}
	sp.runs, sp.wbuf, sp.bufs = nil, nil, nil
}

// bytes is the memory the spill's buffers take.
func (sp *spill) bytes() int64 {
	return int64(cap(sp.wbuf)) + int64(len(sp.bufs))*runBufSize
}

// runReader reads a run's records in order: from a segment of the
// spill file through buf, or from the Import's sorted batch (im).
type runReader struct {
	sp       *spill
	f        *os.File
	off, end int64 // what is left to read of the segment
	buf      []byte
	r, w     int // buf[r:w] is read and not yet taken
	im       *Import
	i        int
	// The current record; the slices are valid until the next read.
	raw, key, owner, rest []byte
	seq                   uint32
	pos                   importPos
}

var errRunTruncated = errors.New("run cut short")

// next reads the next record; false at the end of the run.
func (r *runReader) next() (bool, error) {
	if r.im != nil {
		if r.i == len(r.im.ents) {
			return false, nil
		}
		e := r.im.ents[r.i]
		r.i++
		r.raw = r.im.raw(e.off)
		r.key, r.owner, r.rest = splitRecord(r.raw)
		r.seq, r.pos = e.seq, r.im.posOf(e.seq)
		return true, nil
	}
	if r.w-r.r < spillHdr {
		if err := r.fill(); err != nil {
			return false, err
		}
		if r.w == r.r {
			return false, nil
		}
		if r.w-r.r < spillHdr {
			return false, r.sp.errorf(errRunTruncated)
		}
	}
	h := r.buf[r.r:]
	n := spillHdr + int(binary.BigEndian.Uint32(h))
	if r.w-r.r < n {
		if err := r.fill(); err != nil {
			return false, err
		}
		if r.w-r.r < n {
			return false, r.sp.errorf(errRunTruncated)
		}
		h = r.buf[r.r:]
	}
	r.seq = binary.BigEndian.Uint32(h[4:])
	r.pos = importPos{file: binary.BigEndian.Uint16(h[8:]), line: binary.BigEndian.Uint32(h[10:])}
	r.raw = h[spillHdr:n]
	r.key, r.owner, r.rest = splitRecord(r.raw)
	r.r += n
	return true, nil
}

// fill moves what is left in buf to its start and reads after it.
func (r *runReader) fill() error {
	r.w = copy(r.buf, r.buf[r.r:r.w])
	r.r = 0
	want := int(min(int64(len(r.buf)-r.w), r.end-r.off))
	if want == 0 {
		return nil
	}
	n, err := r.f.ReadAt(r.buf[r.w:r.w+want], r.off)
	r.off += int64(n)
	r.w += n
	if n < want {
		if err == nil {
			err = errRunTruncated
		}
		return r.sp.errorf(err)
	}
	return nil
}

// merger merges runs in (key, arrival) order, the order Commit's sort
// gives: h is a binary heap of the runs with a record left.
type merger struct {
	rs  []runReader
	h   []int
	err error
}

func (m *merger) start() {
	m.h, m.err = m.h[:0], nil
	for i := range m.rs {
		ok, err := m.rs[i].next()
		if err != nil {
			m.err = err
			return
		}
		if ok {
			m.h = append(m.h, i)
		}
	}
	for i := len(m.h)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
}

// head is the least record not yet taken, nil after the last.
func (m *merger) head() (*runReader, error) {
	if m.err != nil || len(m.h) == 0 {
		return nil, m.err
	}
	return &m.rs[m.h[0]], nil
}

// advance takes the head.
func (m *merger) advance() {
	ok, err := m.rs[m.h[0]].next()
	if err != nil {
		m.err = err
		return
	}
	if !ok {
		m.h[0] = m.h[len(m.h)-1]
		m.h = m.h[:len(m.h)-1]
	}
	m.down(0)
}

func (m *merger) less(i, j int) bool {
	a, b := &m.rs[m.h[i]], &m.rs[m.h[j]]
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

func (m *merger) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(m.h) {
			return
		}
		if r := l + 1; r < len(m.h) && m.less(r, l) {
			l = r
		}
		if !m.less(l, i) {
			return
		}
		m.h[i], m.h[l] = m.h[l], m.h[i]
		i = l
	}
}

// kept is the merged records Commit keeps: each set's duplicates
// dropped as the in-memory path drops them (dup; the first one read
// wins), so that both of Commit's passes over a merge see the same.
type kept struct {
	m      merger
	taken  bool   // the head was handed out: advance before the next
	key    []byte // the current set's
	set    []byte // its kept records' class, TTL, rdlength, rdata
	ends   []int  // where each ends in set
	seen   map[string]struct{}
	newSet bool // the record next returned starts a set
}

// next returns the next kept record (valid until the next call), nil
// after the last.
func (k *kept) next() (*runReader, error) {
	for {
		if k.taken {
			k.m.advance()
			k.taken = false
		}
		r, err := k.m.head()
		if r == nil || err != nil {
			return nil, err
		}
		k.taken = true
		k.newSet = len(k.ends) == 0 || !bytes.Equal(r.key, k.key)
		if k.newSet {
			k.key = append(k.key[:0], r.key...)
			k.set, k.ends = k.set[:0], k.ends[:0]
			clear(k.seen)
		}
		at := func(i int) []byte {
			if i == 0 {
				return k.set[:k.ends[0]]
			}
			return k.set[k.ends[i-1]:k.ends[i]]
		}
		if dupIn(len(k.ends), at, r.rest, &k.seen) {
			continue
		}
		k.set = append(k.set, r.rest...)
		k.ends = append(k.ends, len(k.set))
		return r, nil
	}
}

// restart goes back to the runs' starts.
func (k *kept) restart(sp *spill, im *Import) {
	sp.readers(&k.m, im)
	k.taken = false
	k.set, k.ends = k.set[:0], k.ends[:0]
	clear(k.seen)
}

// sets hands out the kept records as RRsets, as Import.sets does.
func (k *kept) sets() setIter {
	var key, val, prev []byte
	var pend *runReader // the first record of the next set, read already
	done := false
	return func() (rrset, bool, error) {
		if done {
			return rrset{}, false, nil
		}
		r := pend
		if r == nil {
			var err error
			if r, err = k.next(); err != nil || r == nil {
				done = true
				return rrset{}, false, err
			}
		}
		key = append(key[:0], r.key...)
		val = val[:0]
		n := 0
		for {
			if n > 0 && bytes.Equal(r.owner, prev) {
				val = append(val, 0)
			} else {
				val = append(val, 1)
				val = append(val, r.owner...)
			}
			prev = append(prev[:0], r.owner...)
			val = append(val, r.rest...)
			n++
			var err error
			if r, err = k.next(); err != nil {
				done = true
				return rrset{}, false, err
			}
			if r == nil || k.newSet {
				pend = r
				done = r == nil
				return rrset{key: key, val: val, n: n}, true, nil
			}
		}
	}
}
