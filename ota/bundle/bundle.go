// Package bundle is the OTA bundle format; its one job is that a slot is
// only ever written with bytes a trusted key signed for this board.
//
// A bundle is one file per board and version holding what a slot needs
// (kernel, initramfs, and for the Pi the boot files of the slot) and a
// manifest signed with ed25519 in the signed-note format of
// golang.org/x/mod/sumdb/note. The manifest comes first and gives the
// SHA-256 of every fixed-size chunk of every part, so a reader verifies
// the signature before it reads any part, and each chunk before it hands
// on a byte of it, streaming with one chunk in memory. See README.md for
// the byte layout.
//
// Create writes a bundle; Open and Resume read one (a Reader yielding
// parts whose bytes are verified); Install streams a bundle into a Target.
package bundle

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Layout constants.
const (
	// Magic opens every bundle.
	Magic = "SHOEBNDL"
	// Format is the layout version, in the header and the manifest's
	// first line.
	Format = 1
	// HeaderSize is magic, format (uint32 big endian) and the manifest's
	// length (uint32 big endian).
	HeaderSize = 16
	// MaxManifest bounds the signed manifest (a 1 GiB part in 1 MiB chunks
	// takes 65 KiB).
	MaxManifest = 1 << 20
	// DefaultChunkSize is the chunk every hash covers.
	DefaultChunkSize = 1 << 20
	// MinChunkSize and MaxChunkSize bound a bundle's chunk size (a reader
	// holds one chunk in memory).
	MinChunkSize = 512
	MaxChunkSize = 16 << 20
	// MaxPartSize bounds one part.
	MaxPartSize = 4 << 30
	// MaxParts bounds the number of parts.
	MaxParts = 256
)

// Errors, each class of bad bundle (wrapped with the details).
var (
	ErrFormat    = errors.New("not a shoestring bundle")
	ErrSignature = errors.New("signature check failed")
	ErrManifest  = errors.New("bad manifest")
	ErrBoard     = errors.New("wrong board")
	ErrVersion   = errors.New("version refused")
	ErrCorrupt   = errors.New("corrupt bundle")
	ErrTruncated = errors.New("truncated bundle")
	ErrTrailing  = errors.New("data after the last part")
)

// Role is what a part is for.
type Role string

// Roles. A bundle has one kernel and one initramfs, and any number of
// boot files (the Pi's firmware, config.txt and device trees).
const (
	Kernel    Role = "kernel"
	Initramfs Role = "initramfs"
	Boot      Role = "boot"
)

// Part is one file of the slot.
type Part struct {
	Role Role
	// Name is the file's name in the slot (no directories).
	Name string
	Size int64
	// SHA256 is the hash of the whole part; Chunks the hash of each
	// chunk, the last one possibly shorter.
	SHA256 [32]byte
	Chunks [][32]byte
	// Offset is where the part's first byte is in the bundle.
	Offset int64
}

// Manifest is a bundle's signed description.
type Manifest struct {
	Board     string
	Version   string
	Built     time.Time
	ChunkSize int64
	Parts     []Part
	// SignedBy names the trusted keys whose signatures verified
	// ("NAME+HASH"); Unverified the signatures by keys not trusted.
	SignedBy   []string
	Unverified []string
	// Note is the signed manifest as in the bundle: keep it to resume an
	// install (ParseManifest verifies it again).
	Note []byte
}

// DataOffset is where the first part starts in the bundle.
func (m *Manifest) DataOffset() int64 { return HeaderSize + int64(len(m.Note)) }

// Size is the bundle's size in bytes.
func (m *Manifest) Size() int64 {
	n := m.DataOffset()
	for _, p := range m.Parts {
		n += p.Size
	}
	return n
}

// Part returns the part with the given role (the first, for Boot).
func (m *Manifest) Part(r Role) (Part, bool) {
	for _, p := range m.Parts {
		if p.Role == r {
			return p, true
		}
	}
	return Part{}, false
}

// ResumeOffset is where in the bundle to resume when the first done
// bytes of part i are written: the start of the chunk holding byte done.
func (m *Manifest) ResumeOffset(i int, done int64) int64 {
	if i >= len(m.Parts) {
		return m.Size()
	}
	p := m.Parts[i]
	if done > p.Size {
		done = p.Size
	}
	return p.Offset + done/m.ChunkSize*m.ChunkSize
}

func chunkCount(size, chunk int64) int64 { return (size + chunk - 1) / chunk }

// chunkLen is the length of chunk c of a part of the given size.
func chunkLen(size, chunk int64, c int) int64 {
	return min(chunk, size-int64(c)*chunk)
}

// text is the manifest's note text (everything the signature covers).
func (m *Manifest) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "shoestring bundle %d\n", Format)
	fmt.Fprintf(&b, "board %s\n", m.Board)
	fmt.Fprintf(&b, "version %s\n", m.Version)
	fmt.Fprintf(&b, "built %s\n", m.Built.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "chunk %d\n", m.ChunkSize)
	for _, p := range m.Parts {
		fmt.Fprintf(&b, "part %s %s %d %x\n", p.Role, p.Name, p.Size, p.SHA256)
		for _, c := range p.Chunks {
			fmt.Fprintf(&b, "%x\n", c)
		}
	}
	return b.String()
}

func header(noteLen int) []byte {
	h := make([]byte, HeaderSize)
	copy(h, Magic)
	binary.BigEndian.PutUint32(h[8:], Format)
	binary.BigEndian.PutUint32(h[12:], uint32(noteLen))
	return h
}

// parseHeader returns the manifest's length.
func parseHeader(h []byte) (int, error) {
	if string(h[:8]) != Magic {
		return 0, fmt.Errorf("%w: bad magic %q", ErrFormat, h[:8])
	}
	if f := binary.BigEndian.Uint32(h[8:]); f != Format {
		return 0, fmt.Errorf("%w: format %d (this firmware reads %d)", ErrFormat, f, Format)
	}
	n := binary.BigEndian.Uint32(h[12:])
	if n == 0 || n > MaxManifest {
		return 0, fmt.Errorf("%w: manifest length %d (at most %d)", ErrFormat, n, MaxManifest)
	}
	return int(n), nil
}

func validName(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validVersionText is what a version may contain (the order is checked
// by parseVersion).
func validVersionText(s string) bool {
	return s != "" && len(s) <= 128 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-+") == ""
}

// parseText parses the manifest text strictly: every line in its place,
// nothing unknown, the chunk hashes matching the sizes.
func parseText(text string, dataOffset int64) (*Manifest, error) {
	bad := func(line int, format string, args ...any) error {
		return fmt.Errorf("%w: line %d: %s", ErrManifest, line+1, fmt.Sprintf(format, args...))
	}
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("%w: no final newline", ErrManifest)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	m := &Manifest{}
	field := func(i int, key string) (string, error) {
		if i >= len(lines) {
			return "", bad(i, "missing %q", key)
		}
		v, ok := strings.CutPrefix(lines[i], key+" ")
		if !ok || v == "" {
			return "", bad(i, "want %q, have %q", key+" …", lines[i])
		}
		return v, nil
	}
	v, err := field(0, "shoestring bundle")
	if err != nil {
		return nil, err
	}
	if v != strconv.Itoa(Format) {
		return nil, bad(0, "format %q (this firmware reads %d)", v, Format)
	}
	if m.Board, err = field(1, "board"); err != nil {
		return nil, err
	}
	if !validName(m.Board) {
		return nil, bad(1, "board %q", m.Board)
	}
	if m.Version, err = field(2, "version"); err != nil {
		return nil, err
	}
	if !validVersionText(m.Version) {
		return nil, bad(2, "version %q", m.Version)
	}
	if v, err = field(3, "built"); err != nil {
		return nil, err
	}
	if m.Built, err = time.Parse(time.RFC3339, v); err != nil {
		return nil, bad(3, "built %q: %v", v, err)
	}
	if v, err = field(4, "chunk"); err != nil {
		return nil, err
	}
	if m.ChunkSize, err = strconv.ParseInt(v, 10, 64); err != nil || m.ChunkSize < MinChunkSize || m.ChunkSize > MaxChunkSize || strconv.FormatInt(m.ChunkSize, 10) != v {
		return nil, bad(4, "chunk size %q (%d to %d)", v, MinChunkSize, MaxChunkSize)
	}
	off := dataOffset
	names := map[string]bool{}
	roles := map[Role]int{}
	i := 5
	for i < len(lines) {
		v, err := field(i, "part")
		if err != nil {
			return nil, err
		}
		f := strings.Split(v, " ")
		if len(f) != 4 {
			return nil, bad(i, "want \"part ROLE NAME SIZE SHA256\", have %q", lines[i])
		}
		p := Part{Role: Role(f[0]), Name: f[1], Offset: off}
		switch p.Role {
		case Kernel, Initramfs, Boot:
		default:
			return nil, bad(i, "unknown role %q", f[0])
		}
		if !validName(p.Name) || names[p.Name] {
			return nil, bad(i, "part name %q (bad or repeated)", p.Name)
		}
		names[p.Name] = true
		roles[p.Role]++
		if p.Size, err = strconv.ParseInt(f[2], 10, 64); err != nil || p.Size < 0 || p.Size > MaxPartSize || strconv.FormatInt(p.Size, 10) != f[2] {
			return nil, bad(i, "part size %q", f[2])
		}
		if err := parseHash(f[3], &p.SHA256); err != nil {
			return nil, bad(i, "part hash: %v", err)
		}
		i++
		n := int(chunkCount(p.Size, m.ChunkSize))
		if i+n > len(lines) {
			return nil, bad(len(lines), "part %s: %d chunk hashes, have %d", p.Name, n, len(lines)-i)
		}
		p.Chunks = make([][32]byte, n)
		for c := range n {
			if err := parseHash(lines[i], &p.Chunks[c]); err != nil {
				return nil, bad(i, "part %s chunk %d: %v", p.Name, c, err)
			}
			i++
		}
		off += p.Size
		m.Parts = append(m.Parts, p)
		if len(m.Parts) > MaxParts {
			return nil, bad(i, "more than %d parts", MaxParts)
		}
	}
	if roles[Kernel] != 1 || roles[Initramfs] != 1 {
		return nil, fmt.Errorf("%w: want one kernel and one initramfs, have %d and %d", ErrManifest, roles[Kernel], roles[Initramfs])
	}
	return m, nil
}

func parseHash(s string, h *[32]byte) error {
	if len(s) != 64 || strings.ToLower(s) != s {
		return fmt.Errorf("%q: want 64 lower-case hex digits", s)
	}
	_, err := hex.Decode(h[:], []byte(s))
	return err
}
