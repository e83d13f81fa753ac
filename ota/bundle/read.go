package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Options say what a node accepts besides a trusted signature.
type Options struct {
	// Board is the board the bundle must be for ("" accepts any: offline
	// checks only).
	Board string
	// Running is the running firmware's version; the bundle's must be
	// newer ("" skips the check: offline checks only).
	Running string
	// AllowDowngrade accepts a version older than or equal to Running.
	AllowDowngrade bool
}

// ReadManifest reads a bundle's header and manifest from r and verifies
// them: signature, then board and version. r is left at the first part.
func ReadManifest(r io.Reader, keys *Keys, o Options) (*Manifest, error) {
	signed, err := readNote(r)
	if err != nil {
		return nil, err
	}
	return ParseManifest(signed, keys, o)
}

// ParseManifest verifies a signed manifest (Manifest.Note, kept to
// resume) and returns it.
func ParseManifest(signed []byte, keys *Keys, o Options) (*Manifest, error) {
	if keys == nil {
		return nil, fmt.Errorf("%w: no trusted keys", ErrSignature)
	}
	n, err := note.Open(signed, keys.verifiers)
	if err != nil {
		var unv *note.UnverifiedNoteError
		var inv *note.InvalidSignatureError
		switch {
		case errors.As(err, &unv):
			var by []string
			for _, s := range unv.Note.UnverifiedSigs {
				by = append(by, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return nil, fmt.Errorf("%w: no trusted key signed it (signed by %s; trusted: %s)", ErrSignature, orNone(by), strings.Join(keyIDs(keys), ", "))
		case errors.As(err, &inv):
			return nil, fmt.Errorf("%w: %v", ErrSignature, err)
		}
		return nil, fmt.Errorf("%w: signed manifest: %v", ErrSignature, err)
	}
	if err := canonicalSignatures(signed, n.Text); err != nil {
		return nil, err
	}
	m, err := parseText(n.Text, HeaderSize+int64(len(signed)))
	if err != nil {
		return nil, err
	}
	m.Note = signed
	for _, s := range n.Sigs {
		m.SignedBy = append(m.SignedBy, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	for _, s := range n.UnverifiedSigs {
		m.Unverified = append(m.Unverified, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	if err := ValidVersion(m.Version); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if o.Board != "" && m.Board != o.Board {
		return nil, fmt.Errorf("%w: bundle is for %s, this is %s", ErrBoard, m.Board, o.Board)
	}
	if o.Running != "" && !o.AllowDowngrade {
		if err := checkNewer(m.Version, o.Running); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Inspect reads a bundle's header and manifest WITHOUT checking any
// signature (bundle info): the manifest's signatures are listed in
// Unverified.
func Inspect(r io.Reader) (*Manifest, error) {
	signed, err := readNote(r)
	if err != nil {
		return nil, err
	}
	split := bytes.LastIndex(signed, []byte("\n\n"))
	if split < 0 {
		return nil, fmt.Errorf("%w: manifest has no signature block", ErrManifest)
	}
	m, err := parseText(string(signed[:split+1]), HeaderSize+int64(len(signed)))
	if err != nil {
		return nil, err
	}
	m.Note = signed
	for _, l := range strings.Split(strings.TrimSuffix(string(signed[split+2:]), "\n"), "\n") {
		name, b64, _ := strings.Cut(strings.TrimPrefix(l, "— "), " ")
		id := name
		if sig, err := base64.StdEncoding.DecodeString(b64); err == nil && len(sig) > 4 {
			id = fmt.Sprintf("%s+%02x%02x%02x%02x", name, sig[0], sig[1], sig[2], sig[3])
		}
		m.Unverified = append(m.Unverified, id)
	}
	return m, nil
}

func readNote(r io.Reader) ([]byte, error) {
	h := make([]byte, HeaderSize)
	if _, err := io.ReadFull(r, h); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: %d-byte header cut short", ErrTruncated, HeaderSize)
		}
		return nil, err
	}
	n, err := parseHeader(h)
	if err != nil {
		return nil, err
	}
	signed := make([]byte, n)
	if _, err := io.ReadFull(r, signed); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: manifest (%d bytes) cut short", ErrTruncated, n)
		}
		return nil, err
	}
	return signed, nil
}

// canonicalSignatures refuses signature lines other than exactly as a
// signer writes them: base64 with zero padding bits (Go's decoder ignores
// them, so a flipped bit there would not change the signature read) and
// no line twice.
func canonicalSignatures(signed []byte, text string) error {
	seen := map[string]bool{}
	block := strings.TrimSuffix(string(signed[len(text)+1:]), "\n")
	for _, l := range strings.Split(block, "\n") {
		_, b64, _ := strings.Cut(strings.TrimPrefix(l, "— "), " ")
		sig, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil || base64.StdEncoding.EncodeToString(sig) != b64 || seen[l] {
			return fmt.Errorf("%w: signature line %q not canonical", ErrSignature, l)
		}
		seen[l] = true
	}
	return nil
}

func keyIDs(k *Keys) []string {
	var ids []string
	for _, s := range k.list {
		f := strings.SplitN(s, "+", 3)
		ids = append(ids, f[0]+"+"+f[1])
	}
	return ids
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no key"
	}
	return strings.Join(s, ", ")
}

// Reader reads a bundle's parts after its manifest is verified: every
// byte it yields is in a chunk whose SHA-256 matched the manifest.
type Reader struct {
	m   *Manifest
	r   io.Reader
	buf []byte
	// next is the part of the Stream Next returns next; cur the current.
	next int
	cur  *Stream
	// resumeChunk is the chunk the next Stream starts at (Resume).
	resumeChunk int
	end         bool // the end of the bundle was checked
	err         error
}

// Open verifies a bundle's manifest and returns a Reader of its parts.
func Open(r io.Reader, keys *Keys, o Options) (*Reader, error) {
	m, err := ReadManifest(r, keys, o)
	if err != nil {
		return nil, err
	}
	return &Reader{m: m, r: r, buf: make([]byte, m.ChunkSize)}, nil
}

// Resume returns a Reader for an interrupted read: r yields the bundle
// from offset off on (an HTTP range, a file seeked there), off being a
// chunk boundary (Manifest.ResumeOffset), m a manifest verified before
// (ParseManifest of Manifest.Note). The first Stream starts in the
// middle of its part (Stream.Start).
func Resume(r io.Reader, m *Manifest, off int64) (*Reader, error) {
	rd := &Reader{m: m, r: r, buf: make([]byte, m.ChunkSize)}
	if off == m.Size() {
		rd.next = len(m.Parts)
		return rd, nil
	}
	for i, p := range m.Parts {
		empty := p.Size == 0 && off == p.Offset
		if off < p.Offset || off >= p.Offset+p.Size && !empty {
			continue
		}
		in := off - p.Offset
		if in%m.ChunkSize != 0 {
			return nil, fmt.Errorf("resume at %d: not a chunk boundary of part %s", off, p.Name)
		}
		rd.next = i
		rd.resumeChunk = int(in / m.ChunkSize)
		return rd, nil
	}
	return nil, fmt.Errorf("resume at %d: not in any part of the bundle (%d bytes)", off, m.Size())
}

// Manifest returns the verified manifest.
func (r *Reader) Manifest() *Manifest { return r.m }

// Stream is one part's verified bytes.
type Stream struct {
	Part
	// Index is the part's index in the manifest.
	Index int
	// Start is the offset in the part of the first byte Read yields
	// (0 unless resumed).
	Start int64

	rd    *Reader
	chunk int    // next chunk to read
	avail []byte // verified, not yet read
	whole hash.Hash
}

// Next returns the next part, reading (and verifying) what is left of
// the previous one first; io.EOF after the last, once the end of the
// bundle is checked.
func (r *Reader) Next() (*Stream, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.cur != nil {
		if _, err := io.Copy(io.Discard, r.cur); err != nil {
			return nil, err
		}
		r.cur = nil
	}
	if r.next >= len(r.m.Parts) {
		if err := r.checkEnd(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	i := r.next
	r.next++
	s := &Stream{Part: r.m.Parts[i], Index: i, rd: r, chunk: r.resumeChunk}
	s.Start = int64(s.chunk) * r.m.ChunkSize
	if s.chunk == 0 {
		s.whole = sha256.New()
	}
	r.resumeChunk = 0
	r.cur = s
	return s, nil
}

// Read yields the part's bytes, a verified chunk at a time.
func (s *Stream) Read(p []byte) (int, error) {
	if len(s.avail) == 0 {
		if s.chunk >= len(s.Chunks) {
			return 0, io.EOF
		}
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.avail)
	s.avail = s.avail[n:]
	return n, nil
}

// fill reads and verifies the next chunk; for the last chunk of the part
// it checks the whole part's hash, and for the last of the bundle that
// nothing follows, before handing on any of it.
func (s *Stream) fill() error {
	r := s.rd
	if r.err != nil {
		return r.err
	}
	c := s.chunk
	n := chunkLen(s.Size, r.m.ChunkSize, c)
	first := int64(c) * r.m.ChunkSize
	where := fmt.Sprintf("part %s chunk %d (bytes %d-%d of %d)", s.Name, c, first, first+n-1, s.Size)
	b := r.buf[:n]
	if _, err := io.ReadFull(r.r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: ends in %s", ErrTruncated, where)
		} else {
			err = fmt.Errorf("reading %s: %w", where, err)
		}
		return r.fail(err)
	}
	if sha256.Sum256(b) != s.Chunks[c] {
		return r.fail(fmt.Errorf("%w: %s: SHA-256 differs from the manifest", ErrCorrupt, where))
	}
	s.chunk++
	if s.whole != nil {
		s.whole.Write(b)
		if s.chunk == len(s.Chunks) && !bytes.Equal(s.whole.Sum(nil), s.SHA256[:]) {
			return r.fail(fmt.Errorf("%w: part %s: SHA-256 of the whole part differs from the manifest", ErrCorrupt, s.Name))
		}
	}
	if s.chunk == len(s.Chunks) && s.Index == len(r.m.Parts)-1 {
		if err := r.checkEnd(); err != nil {
			return err
		}
	}
	s.avail = b
	return nil
}

// checkEnd checks that the bundle ends after its last part.
func (r *Reader) checkEnd() error {
	if r.end {
		return nil
	}
	var one [1]byte
	n, err := io.ReadFull(r.r, one[:])
	switch {
	case n > 0:
		return r.fail(fmt.Errorf("%w: the bundle goes on after %d bytes", ErrTrailing, r.m.Size()))
	case errors.Is(err, io.EOF):
		r.end = true
		return nil
	}
	return r.fail(fmt.Errorf("reading the end of the bundle: %w", err))
}

func (r *Reader) fail(err error) error {
	r.err = err
	return err
}
