package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/bundle"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// target is a bundle.Target writing one slot: every part goes to a
// temporary file beside the slot's files, fsynced when the part is
// committed; finish renames them over the slot's files once the whole
// bundle is verified. Until then the slot's files are untouched, and
// cleanup removes whatever is left.
type target interface {
	bundle.Target
	setManifest(m *bundle.Manifest)
	// current is the part being written ("" between parts).
	current() string
	// resumePoint is the part to resume at and how many of its bytes
	// are written (bundle.Manifest.ResumeOffset rounds down to a chunk).
	resumePoint() (part int, done int64)
	// finish replaces the slot's files with the parts written (and
	// cmdline.txt, when not "").
	finish(cmdline string) error
	// cleanup removes the temporary files left.
	cleanup()
}

func newTarget(m board.BootMethod, dir, s string) target {
	if m == slot.Binary {
		return &binaryTarget{dir: dir, slot: s}
	}
	return &dirTarget{dir: dir, done: map[string]string{}}
}

// tmpName is the temporary file a part is written to before finish.
func tmpName(dir, name string) string { return filepath.Join(dir, "."+name+".ota") }

// partIndex finds p in m.
func partIndex(m *bundle.Manifest, p bundle.Part) (int, error) {
	for i, q := range m.Parts {
		if q.Name == p.Name && q.Offset == p.Offset {
			return i, nil
		}
	}
	return 0, fmt.Errorf("part %s is not in the manifest", p.Name)
}

// dirTarget writes a slot partition (GRUB, tryboot, the harness): each
// part is the file of its name in the slot.
type dirTarget struct {
	dir string
	m   *bundle.Manifest

	mu   sync.Mutex
	idx  int    // the part being written, or the next one
	cur  string // its name while it is written
	n    int64  // its bytes written
	done map[string]string
	tmps []string
}

func (t *dirTarget) setManifest(m *bundle.Manifest) { t.m = m }

func (t *dirTarget) current() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur
}

func (t *dirTarget) resumePoint() (int, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.idx, t.n
}

func (t *dirTarget) Part(p bundle.Part, start int64) (bundle.PartWriter, error) {
	i, err := partIndex(t.m, p)
	if err != nil {
		return nil, err
	}
	if p.Name == "cmdline.txt" {
		// It names its slot: the installer writes it (finish).
		return nil, fmt.Errorf("the bundle carries %s, which the installer writes for the slot it fills", p.Name)
	}
	path := tmpName(t.dir, p.Name)
	flags := os.O_WRONLY | os.O_CREATE
	if start == 0 {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, err
	}
	t.tmps = append(t.tmps, path)
	if start > 0 {
		// A resume: the bytes before start were written by this job.
		st, err := f.Stat()
		if err == nil && st.Size() < start {
			err = fmt.Errorf("resuming %s at %d: only %d bytes written", p.Name, start, st.Size())
		}
		if err == nil {
			err = f.Truncate(start)
		}
		if err == nil {
			_, err = f.Seek(start, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	t.mu.Lock()
	t.idx, t.cur, t.n = i, p.Name, start
	t.mu.Unlock()
	return &filePart{t: t, f: f, name: p.Name, path: path}, nil
}

type filePart struct {
	t    *dirTarget
	f    *os.File
	name string
	path string
}

func (w *filePart) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	w.t.mu.Lock()
	w.t.n += int64(n)
	w.t.mu.Unlock()
	return n, err
}

func (w *filePart) Commit() error {
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	t := w.t
	t.mu.Lock()
	t.done[w.name] = w.path
	t.idx, t.cur, t.n = t.idx+1, "", 0
	t.mu.Unlock()
	return nil
}

// Abort keeps what was written, for a resume; cleanup removes it.
func (w *filePart) Abort(error) { w.f.Close() }

func (t *dirTarget) finish(cmdline string) error {
	if len(t.done) != len(t.m.Parts) {
		return fmt.Errorf("%d of %d parts written", len(t.done), len(t.m.Parts))
	}
	if cmdline != "" {
		path := tmpName(t.dir, "cmdline.txt")
		t.tmps = append(t.tmps, path)
		if err := writeSynced(path, []byte(cmdline+"\n"), 0o644); err != nil {
			return err
		}
		t.done["cmdline.txt"] = path
	}
	// The kernel last: a slot is bootable (grub.cfg's test) only once
	// it has one, so a cut before the end leaves one that is skipped.
	var kernel string
	for _, p := range t.m.Parts {
		if p.Role == bundle.Kernel {
			kernel = p.Name
			continue
		}
		if err := os.Rename(t.done[p.Name], filepath.Join(t.dir, p.Name)); err != nil {
			return err
		}
	}
	if tmp, ok := t.done["cmdline.txt"]; ok {
		if err := os.Rename(tmp, filepath.Join(t.dir, "cmdline.txt")); err != nil {
			return err
		}
	}
	if err := os.Rename(t.done[kernel], filepath.Join(t.dir, kernel)); err != nil {
		return err
	}
	if err := t.removeStale(); err != nil {
		return err
	}
	return syncDir(t.dir)
}

// removeStale deletes the slot's files the new version does not carry:
// a device tree an older version had, a temporary file a power cut left
// in an earlier install. A slot holds exactly its bundle's parts and
// cmdline.txt (`bundle create -boot-files-from` takes every other file
// of the image's slot); directories are left alone. Names compare
// without case, as the slot is FAT. It runs while the slot is recorded
// empty, so a cut in the middle leaves nothing that is booted.
func (t *dirTarget) removeStale() error {
	keep := map[string]bool{"cmdline.txt": true}
	for _, p := range t.m.Parts {
		keep[strings.ToLower(p.Name)] = true
	}
	ents, err := os.ReadDir(t.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if keep[strings.ToLower(e.Name())] || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(t.dir, e.Name())); err != nil {
			return fmt.Errorf("removing %s, which the new version does not carry: %w", e.Name(), err)
		}
	}
	return nil
}

func (t *dirTarget) cleanup() {
	for _, p := range t.tmps {
		os.Remove(p) // gone already once renamed
	}
}

func writeSynced(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// binaryTarget writes a binary slot: the firmware binary is the
// initramfs's /init, extracted as the initramfs part streams through
// (initbin.go); the kernel and boot files are verified and dropped. A
// resume restarts the initramfs part from its first byte, as a
// decompressor cannot start in the middle.
type binaryTarget struct {
	dir  string
	slot string
	m    *bundle.Manifest

	mu   sync.Mutex
	idx  int
	cur  string
	n    int64 // bytes of the current part seen, when it is not the initramfs
	bin  bool  // the binary is extracted and synced
	tmps []string
}

func (t *binaryTarget) setManifest(m *bundle.Manifest) { t.m = m }

func (t *binaryTarget) current() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur
}

func (t *binaryTarget) resumePoint() (int, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.idx, t.n
}

func (t *binaryTarget) path() string { return filepath.Join(t.dir, slot.BinaryName(t.slot)) }

func (t *binaryTarget) Part(p bundle.Part, start int64) (bundle.PartWriter, error) {
	i, err := partIndex(t.m, p)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.idx, t.cur, t.n = i, p.Name, start
	t.mu.Unlock()
	if p.Role != bundle.Initramfs {
		return &discardPart{t: t}, nil
	}
	if start != 0 {
		return nil, fmt.Errorf("part %s: a binary slot cannot resume within the initramfs", p.Name)
	}
	tmp := tmpName(t.dir, slot.BinaryName(t.slot))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return nil, err
	}
	t.tmps = append(t.tmps, tmp)
	pr, pw := io.Pipe()
	w := &binPart{t: t, f: f, pw: pw, done: make(chan error, 1)}
	go func() {
		err := extractInit(pr, f)
		// Whatever follows /init is still read (and verified upstream).
		if err == nil {
			_, err = io.Copy(io.Discard, pr)
		}
		pr.CloseWithError(errors.Join(err, errExtracted))
		w.done <- err
	}()
	return w, nil
}

var errExtracted = errors.New("initramfs extraction ended")

type discardPart struct{ t *binaryTarget }

// Write drops verified bytes the slot does not need, counting them so a
// resume starts where they stopped.
func (d *discardPart) Write(b []byte) (int, error) {
	d.t.mu.Lock()
	d.t.n += int64(len(b))
	d.t.mu.Unlock()
	return len(b), nil
}

func (d *discardPart) Commit() error {
	d.t.mu.Lock()
	d.t.idx, d.t.cur, d.t.n = d.t.idx+1, "", 0
	d.t.mu.Unlock()
	return nil
}
func (discardPart) Abort(error) {}

type binPart struct {
	t    *binaryTarget
	f    *os.File
	pw   *io.PipeWriter
	done chan error
}

func (w *binPart) Write(b []byte) (int, error) {
	n, err := w.pw.Write(b)
	if err != nil {
		// The extractor stopped: its error says why.
		if e := <-w.done; e != nil {
			w.done <- e
			return n, fmt.Errorf("initramfs: %w", e)
		}
		w.done <- nil
	}
	return n, err
}

func (w *binPart) Commit() error {
	w.pw.Close()
	err := <-w.done
	if err == nil {
		err = w.f.Sync()
	}
	if e := w.f.Close(); err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	t := w.t
	t.mu.Lock()
	t.bin, t.idx, t.cur, t.n = true, t.idx+1, "", 0
	t.mu.Unlock()
	return nil
}

func (w *binPart) Abort(reason error) {
	w.pw.CloseWithError(reason)
	<-w.done
	w.f.Close()
}

func (t *binaryTarget) finish(string) error {
	if !t.bin {
		return errors.New("no firmware binary extracted")
	}
	if err := os.Rename(tmpName(t.dir, slot.BinaryName(t.slot)), t.path()); err != nil {
		return err
	}
	return syncDir(t.dir)
}

func (t *binaryTarget) cleanup() {
	for _, p := range t.tmps {
		os.Remove(p) // gone already once renamed
	}
}
