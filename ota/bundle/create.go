package bundle

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Source is a part to put in a bundle: read twice (hashing, then
// copying), never held in memory.
type Source struct {
	Role Role
	Name string
	Size int64
	R    io.ReaderAt
}

// CreateOptions describe a bundle.
type CreateOptions struct {
	Board   string
	Version string
	Built   time.Time
	// ChunkSize is DefaultChunkSize when 0.
	ChunkSize int64
	// Signers sign the manifest: one, or the old and the new key while
	// keys rotate.
	Signers []Signer
}

// Create writes a bundle of the parts to w, in their order, and returns
// its manifest.
func Create(w io.Writer, o CreateOptions, parts []Source) (*Manifest, error) {
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkSize < MinChunkSize || o.ChunkSize > MaxChunkSize {
		return nil, fmt.Errorf("chunk size %d: want %d to %d", o.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if !validName(o.Board) {
		return nil, fmt.Errorf("board %q: want letters, digits, '.', '-', '_'", o.Board)
	}
	if !validVersionText(o.Version) {
		return nil, fmt.Errorf("version %q: bad characters", o.Version)
	}
	if err := ValidVersion(o.Version); err != nil {
		return nil, err
	}
	if len(o.Signers) == 0 {
		return nil, errors.New("no signing key")
	}
	m := &Manifest{Board: o.Board, Version: o.Version, Built: o.Built.UTC().Truncate(time.Second), ChunkSize: o.ChunkSize}
	buf := make([]byte, o.ChunkSize)
	for _, s := range parts {
		if s.Size < 0 || s.Size > MaxPartSize {
			return nil, fmt.Errorf("part %s: size %d", s.Name, s.Size)
		}
		p := Part{Role: s.Role, Name: s.Name, Size: s.Size}
		var err error
		p.SHA256, p.Chunks, err = hashSource(s, buf)
		if err != nil {
			return nil, err
		}
		m.Parts = append(m.Parts, p)
	}
	text := m.text()
	// The manifest must read back as written (names, roles, counts).
	if _, err := parseText(text, 0); err != nil {
		return nil, err
	}
	signed, err := note.Sign(&note.Note{Text: text}, o.Signers...)
	if err != nil {
		return nil, fmt.Errorf("signing: %v", err)
	}
	if len(signed) > MaxManifest {
		return nil, fmt.Errorf("manifest of %d bytes: more than %d", len(signed), MaxManifest)
	}
	m, err = parseText(text, HeaderSize+int64(len(signed)))
	if err != nil {
		return nil, err
	}
	m.Note = signed
	for _, s := range o.Signers {
		m.SignedBy = append(m.SignedBy, fmt.Sprintf("%s+%08x", s.Name(), s.KeyHash()))
	}
	if _, err := w.Write(header(len(signed))); err != nil {
		return nil, err
	}
	if _, err := w.Write(signed); err != nil {
		return nil, err
	}
	// Copy each part, hashing again: a source that changed since it was
	// hashed must not make a bundle that fails on every box.
	for i, s := range parts {
		h := sha256.New()
		n, err := io.CopyBuffer(io.MultiWriter(w, h), io.NewSectionReader(s.R, 0, s.Size), buf)
		if err != nil {
			return nil, fmt.Errorf("part %s: %v", s.Name, err)
		}
		if n != s.Size || !bytes.Equal(h.Sum(nil), m.Parts[i].SHA256[:]) {
			return nil, fmt.Errorf("part %s changed while the bundle was written", s.Name)
		}
	}
	return m, nil
}

func hashSource(s Source, buf []byte) (whole [32]byte, chunks [][32]byte, err error) {
	h := sha256.New()
	chunk := int64(len(buf))
	for off := int64(0); off < s.Size; off += chunk {
		b := buf[:min(chunk, s.Size-off)]
		if n, err := s.R.ReadAt(b, off); n != len(b) {
			return whole, nil, fmt.Errorf("part %s: reading at %d: %v", s.Name, off, err)
		}
		chunks = append(chunks, sha256.Sum256(b))
		h.Write(b)
	}
	copy(whole[:], h.Sum(nil))
	return whole, chunks, nil
}
