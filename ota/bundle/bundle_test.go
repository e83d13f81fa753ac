package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

const testChunk = 4096

type key struct {
	signer Signer
	pub    string
}

func newKey(t testing.TB, name string) key {
	t.Helper()
	priv, pub, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, pub2, err := ParseSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	if pub2 != pub {
		t.Fatalf("public key derived from the private key: %s, want %s", pub2, pub)
	}
	return key{s, pub}
}

func keys(t testing.TB, ks ...key) *Keys {
	t.Helper()
	var pubs []string
	for _, k := range ks {
		pubs = append(pubs, k.pub)
	}
	k, err := ParseKeys(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// testParts: a kernel of 3 chunks less a little (last one partial), an
// initramfs of exactly 2 chunks, a Pi-style boot file smaller than a
// chunk.
type testPart struct {
	role Role
	name string
	data []byte
}

func testParts() []testPart {
	return []testPart{
		{Kernel, "vmlinuz", randBytes(1, 3*testChunk-1000)},
		{Initramfs, "initrd.img", randBytes(2, 2*testChunk)},
		{Boot, "config.txt", []byte("arm_64bit=1\nkernel=vmlinuz\n")},
	}
}

func sources(ps []testPart) []Source {
	var s []Source
	for _, p := range ps {
		s = append(s, Source{Role: p.role, Name: p.name, Size: int64(len(p.data)), R: bytes.NewReader(p.data)})
	}
	return s
}

var built = time.Date(2026, 11, 21, 4, 20, 12, 0, time.UTC)

func build(t testing.TB, version string, ps []testPart, signers ...key) ([]byte, *Manifest) {
	t.Helper()
	var ss []Signer
	for _, k := range signers {
		ss = append(ss, k.signer)
	}
	var buf bytes.Buffer
	m, err := Create(&buf, CreateOptions{Board: "rpi", Version: version, Built: built, ChunkSize: testChunk, Signers: ss}, sources(ps))
	if err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != m.Size() {
		t.Fatalf("bundle is %d bytes, manifest says %d", buf.Len(), m.Size())
	}
	return buf.Bytes(), m
}

// recTarget records what it is given.
type recTarget struct {
	parts []*recWriter
}

type recWriter struct {
	part      Part
	start     int64
	got       bytes.Buffer
	committed bool
	aborted   error
}

func (t *recTarget) Part(p Part, start int64) (PartWriter, error) {
	w := &recWriter{part: p, start: start}
	t.parts = append(t.parts, w)
	return w, nil
}
func (w *recWriter) Write(b []byte) (int, error) { return w.got.Write(b) }
func (w *recWriter) Commit() error {
	if w.aborted != nil {
		panic("commit after abort")
	}
	w.committed = true
	return nil
}
func (w *recWriter) Abort(err error) {
	if w.committed {
		panic("abort after commit")
	}
	w.aborted = err
}

// checkVerifiedOnly asserts the target got only true bytes, whole
// chunks of them unless the part was committed, and every committed
// part whole.
func checkVerifiedOnly(t *testing.T, tg *recTarget, ps []testPart) {
	t.Helper()
	for i, w := range tg.parts {
		want := ps[i].data[w.start:]
		got := w.got.Bytes()
		if !bytes.HasPrefix(want, got) {
			t.Errorf("part %s: target got %d bytes that are not the part's", w.part.Name, len(got))
		}
		if w.committed && len(got) != len(want) {
			t.Errorf("part %s committed with %d of %d bytes", w.part.Name, len(got), len(want))
		}
		if !w.committed && len(got)%testChunk != 0 {
			t.Errorf("part %s: target got %d bytes, not whole chunks", w.part.Name, len(got))
		}
	}
}

func TestGoodBundle(t *testing.T) {
	k := newKey(t, "test")
	ps := testParts()
	b, _ := build(t, "v1.2.0", ps, k)
	var tg recTarget
	m, err := Install(bytes.NewReader(b), keys(t, k), Options{Board: "rpi", Running: "v1.1.0"}, &tg)
	if err != nil {
		t.Fatal(err)
	}
	if m.Board != "rpi" || m.Version != "v1.2.0" || !m.Built.Equal(built) || m.ChunkSize != testChunk || len(m.Parts) != 3 {
		t.Fatalf("manifest %+v", m)
	}
	if len(m.SignedBy) != 1 || !strings.HasPrefix(m.SignedBy[0], "test+") {
		t.Errorf("SignedBy %v", m.SignedBy)
	}
	if len(tg.parts) != 3 {
		t.Fatalf("target got %d parts", len(tg.parts))
	}
	for i, w := range tg.parts {
		if !w.committed || w.aborted != nil || w.start != 0 || w.part.Name != ps[i].name || w.part.Role != ps[i].role {
			t.Errorf("part %d: %+v", i, w)
		}
		if !bytes.Equal(w.got.Bytes(), ps[i].data) {
			t.Errorf("part %s: bytes differ", w.part.Name)
		}
	}
	// Inspect reads the same manifest, unverified.
	im, err := Inspect(bytes.NewReader(b))
	if err != nil || im.Version != "v1.2.0" || len(im.Parts) != 3 || len(im.Unverified) != 1 {
		t.Errorf("Inspect: %+v, %v", im, err)
	}
	// Same inputs, same bytes (ed25519 signatures are deterministic).
	if b2, _ := build(t, "v1.2.0", ps, k); !bytes.Equal(b, b2) {
		t.Error("two builds of the same bundle differ")
	}
}

// install runs Install and checks the target saw only verified bytes,
// and that a failed install aborted the part it failed in.
func install(t *testing.T, b []byte, ks *Keys, o Options, ps []testPart) (*recTarget, error) {
	t.Helper()
	var tg recTarget
	_, err := Install(bytes.NewReader(b), ks, o, &tg)
	checkVerifiedOnly(t, &tg, ps)
	if err != nil && len(tg.parts) > 0 {
		last := tg.parts[len(tg.parts)-1]
		if last.committed || last.aborted == nil {
			t.Errorf("install failed (%v) but part %s was not aborted", err, last.part.Name)
		}
	}
	return &tg, err
}

func flip(b []byte, i int, bit uint) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1 << bit
	return c
}

func TestCorruption(t *testing.T) {
	k := newKey(t, "test")
	ps := testParts()
	b, m := build(t, "v1.2.0", ps, k)
	ks := keys(t, k)
	noteStart := HeaderSize
	text := string(m.Note[:bytes.LastIndex(m.Note, []byte("\n\n"))+1])
	sigStart := noteStart + len(text) + 1
	line := func(prefix string) int { return noteStart + strings.Index(text, prefix) }
	kern, initrd, boot := m.Parts[0], m.Parts[1], m.Parts[2]
	cases := []struct {
		name string
		pos  int
		want error
		// parts is how many parts the target sees begin.
		parts int
	}{
		{"magic", 0, ErrFormat, 0},
		{"magic last byte", 7, ErrFormat, 0},
		{"format", 11, ErrFormat, 0},
		{"manifest length high", 12, ErrFormat, 0},
		{"manifest length low", 15, ErrSignature, 0},
		{"manifest first line", line("shoestring bundle"), ErrSignature, 0},
		{"board", line("board rpi") + 7, ErrSignature, 0},
		{"version", line("version") + 9, ErrSignature, 0},
		{"built", line("built") + 8, ErrSignature, 0},
		{"chunk size", line("chunk") + 7, ErrSignature, 0},
		{"part line", line("part initramfs") + 10, ErrSignature, 0},
		{"chunk hash", line("part kernel") + 150, ErrSignature, 0},
		{"last manifest byte", sigStart - 1, ErrSignature, 0},
		{"signature prefix", sigStart, ErrSignature, 0},
		{"signature key name", sigStart + 5, ErrSignature, 0},
		{"signature key hash", sigStart + len("— test "), ErrSignature, 0},
		{"signature bytes", sigStart + len("— test ") + 20, ErrSignature, 0},
		{"signature last base64 digit", int(kern.Offset) - 3, ErrSignature, 0},
		{"kernel first chunk", int(kern.Offset), ErrCorrupt, 1},
		{"kernel middle chunk", int(kern.Offset) + testChunk + 7, ErrCorrupt, 1},
		{"kernel last partial chunk", int(kern.Offset + kern.Size - 1), ErrCorrupt, 1},
		{"initramfs first chunk", int(initrd.Offset), ErrCorrupt, 2},
		{"initramfs last chunk", int(initrd.Offset + initrd.Size - 1), ErrCorrupt, 2},
		{"boot file", int(boot.Offset) + 3, ErrCorrupt, 3},
		{"last byte", len(b) - 1, ErrCorrupt, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for bit := range uint(8) {
				bad := flip(b, c.pos, bit)
				tg, err := install(t, bad, ks, Options{Board: "rpi"}, ps)
				if err == nil {
					t.Fatalf("bit %d of byte %d flipped: accepted", bit, c.pos)
				}
				if bit == 0 {
					t.Logf("%v", err)
				}
				if c.want == ErrFormat || c.want == ErrCorrupt {
					if !errors.Is(err, c.want) {
						t.Errorf("bit %d: %v, want %v", bit, err, c.want)
					}
				}
				if len(tg.parts) != c.parts {
					t.Errorf("bit %d: target began %d parts, want %d", bit, len(tg.parts), c.parts)
				}
				if c.want == ErrCorrupt {
					// The target has every chunk before the corrupt one
					// and nothing of it, and was told to abort.
					w := tg.parts[len(tg.parts)-1]
					chunkStart := (int64(c.pos) - w.part.Offset) / testChunk * testChunk
					if int64(w.got.Len()) != chunkStart || w.aborted == nil || w.committed {
						t.Errorf("bit %d: target got %d bytes of %s (corrupt chunk at %d), aborted %v", bit, w.got.Len(), w.part.Name, chunkStart, w.aborted)
					}
				}
				if _, err := Verify(bytes.NewReader(bad), ks, Options{}); err == nil {
					t.Errorf("bit %d: Verify accepted", bit)
				}
			}
		})
	}
}

// TestBitFlips flips one bit of every byte (the bit rotating with the
// position), and every bit of the header and manifest: all refused, the
// target never given a byte that is not the part's.
func TestBitFlips(t *testing.T) {
	k := newKey(t, "test")
	ps := testParts()
	b, m := build(t, "v1.2.0", ps, k)
	ks := keys(t, k)
	tried := 0
	for i := range b {
		bits := []uint{uint(i % 8)}
		if i < int(m.DataOffset()) {
			bits = []uint{0, 1, 2, 3, 4, 5, 6, 7}
		}
		for _, bit := range bits {
			tried++
			if _, err := install(t, flip(b, i, bit), ks, Options{Board: "rpi"}, ps); err == nil {
				t.Errorf("byte %d bit %d flipped: accepted", i, bit)
			}
		}
	}
	t.Logf("%d flips of a %d-byte bundle, all refused", tried, len(b))
}

func TestTruncation(t *testing.T) {
	k := newKey(t, "test")
	ps := testParts()
	b, m := build(t, "v1.2.0", ps, k)
	ks := keys(t, k)
	cuts := map[string]int{
		"empty":            0,
		"in magic":         4,
		"in header":        HeaderSize - 1,
		"after header":     HeaderSize,
		"in manifest":      HeaderSize + 20,
		"in signature":     int(m.DataOffset()) - 5,
		"after manifest":   int(m.DataOffset()),
		"in first chunk":   int(m.DataOffset()) + 1,
		"at chunk end":     int(m.DataOffset()) + testChunk,
		"kernel's last":    int(m.Parts[1].Offset) - 1,
		"after kernel":     int(m.Parts[1].Offset),
		"after initramfs":  int(m.Parts[2].Offset),
		"one byte short":   len(b) - 1,
		"in initramfs mid": int(m.Parts[1].Offset) + testChunk + 100,
	}
	for name, n := range cuts {
		t.Run(name, func(t *testing.T) {
			_, err := install(t, b[:n], ks, Options{}, ps)
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("%v, want %v", err, ErrTruncated)
			}
			t.Log(err)
		})
	}
}

func TestTrailingData(t *testing.T) {
	k := newKey(t, "test")
	ps := testParts()
	b, _ := build(t, "v1.2.0", ps, k)
	for _, extra := range [][]byte{{0}, []byte("\n"), randBytes(9, testChunk*2), b} {
		tg, err := install(t, append(bytes.Clone(b), extra...), keys(t, k), Options{}, ps)
		if !errors.Is(err, ErrTrailing) {
			t.Fatalf("%d bytes after the bundle: %v, want %v", len(extra), err, ErrTrailing)
		}
		if last := tg.parts[len(tg.parts)-1]; last.committed {
			t.Errorf("last part committed despite trailing data")
		}
	}
	// A bundle whose last part is empty is checked as well.
	ps = append(ps, testPart{Boot, "empty.dtb", nil})
	b, _ = build(t, "v1.2.0", ps, k)
	if _, err := install(t, b, keys(t, k), Options{}, ps); err != nil {
		t.Fatal(err)
	}
	if _, err := install(t, append(b, 'x'), keys(t, k), Options{}, ps); !errors.Is(err, ErrTrailing) {
		t.Fatalf("empty last part, trailing byte: %v", err)
	}
}

func TestKeys(t *testing.T) {
	old, cur, other := newKey(t, "shoestring-2025"), newKey(t, "shoestring-2026"), newKey(t, "someone-else")
	ps := testParts()
	byOld, _ := build(t, "v1.2.0", ps, old)
	byBoth, _ := build(t, "v1.2.0", ps, old, cur)
	byNew, _ := build(t, "v1.2.0", ps, cur)
	for _, c := range []struct {
		name    string
		bundle  []byte
		trusted []key
		ok      bool
	}{
		{"wrong key", byOld, []key{other}, false},
		{"old key, node trusts old", byOld, []key{old}, true},
		{"old key, node trusts old and new", byOld, []key{old, cur}, true},
		{"rotating: both sign, node trusts old", byBoth, []key{old}, true},
		{"rotating: both sign, node trusts new", byBoth, []key{cur}, true},
		{"rotating: both sign, node trusts both", byBoth, []key{cur, old}, true},
		{"rotated: new key, node trusts both", byNew, []key{old, cur}, true},
		{"rotated: new key, node trusts old only", byNew, []key{old}, false},
		{"retired: old key, node trusts new only", byOld, []key{cur}, false},
		{"same name, other key", byOld, []key{newKey(t, "shoestring-2025")}, false},
	} {
		_, err := install(t, c.bundle, keys(t, c.trusted...), Options{}, ps)
		if c.ok != (err == nil) {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v, want %v", c.name, err, ErrSignature)
		}
	}
	if _, err := ParseKeys(); err == nil {
		t.Error("no keys accepted")
	}
	if _, err := ParseKeys("PRIVATE+KEY+x"); err == nil {
		t.Error("bad key accepted")
	}
}

func TestBoardAndVersion(t *testing.T) {
	k := newKey(t, "test")
	ps := testParts()
	b, _ := build(t, "v1.2.0-3-gabcdef123456", ps, k)
	ks := keys(t, k)
	for _, c := range []struct {
		o    Options
		want error
	}{
		{Options{Board: "rpi", Running: "v1.2.0"}, nil},
		{Options{Board: "rpi", Running: "v1.2.0-2-g0123456789ab"}, nil},
		{Options{Board: "rpi", Running: "v1.1.9"}, nil},
		{Options{Board: "rpi", Running: "dev"}, nil},
		{Options{Board: "rpi", Running: "baa2855"}, nil},
		{Options{Board: "rpi"}, nil},
		{Options{}, nil},
		{Options{Board: "atom64", Running: "v1.0.0"}, ErrBoard},
		{Options{Board: "atom64", Running: "v1.0.0", AllowDowngrade: true}, ErrBoard},
		{Options{Board: "rpi", Running: "v1.2.0-3-gabcdef123456"}, ErrVersion},
		{Options{Board: "rpi", Running: "v1.2.0-3-gabcdef123456-dirty"}, ErrVersion},
		{Options{Board: "rpi", Running: "v1.2.0-3-g111111111111"}, ErrVersion},
		{Options{Board: "rpi", Running: "v1.2.0-4-g111111111111"}, ErrVersion},
		{Options{Board: "rpi", Running: "v1.2.1-rc.1"}, ErrVersion},
		{Options{Board: "rpi", Running: "v2.0.0"}, ErrVersion},
		{Options{Board: "rpi", Running: "v2.0.0", AllowDowngrade: true}, nil},
		{Options{Board: "rpi", Running: "v1.2.0-3-gabcdef123456", AllowDowngrade: true}, nil},
	} {
		_, err := install(t, b, ks, c.o, ps)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%+v: %v, want %v", c.o, err, c.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"v1.0.0", "v1.0.0", 0},
		{"v1.0.1", "v1.0.0", 1},
		{"v1.10.0", "v1.9.0", 1},
		{"v2.0.0", "v1.99.99", 1},
		{"v1.0.0-rc.1", "v1.0.0", -1},
		{"v1.0.0-rc.2", "v1.0.0-rc.1", 1},
		{"v1.0.0-rc.10", "v1.0.0-rc.9", 1},
		{"v1.0.0-1-gabcd", "v1.0.0", 1},
		{"v1.0.0-10-gabcd", "v1.0.0-9-gabcd", 1},
		{"v1.0.0-rc.1-5-gabcd", "v1.0.0", -1},
		{"v1.0.0-rc.1-5-gabcd", "v1.0.0-rc.1", 1},
		{"v1.0.1", "v1.0.0-99-gabcd", 1},
		{"v1.0.0-3-gaaaa", "v1.0.0-3-gbbbb", 0},
		{"v1.0.0-dirty", "v1.0.0", 0},
		{"v0.0.0-23-gbaa28555c6ba", "v0.0.0-22-gbaa28555c6ba", 1},
		{"v1.0.0+build.5", "v1.0.0", 0},
	} {
		got, err := CompareVersions(c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("CompareVersions(%s, %s) = %d, %v; want %d", c.a, c.b, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "dev", "baa2855", "1.2.3", "v1.2", "v1", "v1.2.3-", "v01.2.3", "v1.2.3 x"} {
		if err := ValidVersion(bad); err == nil {
			t.Errorf("ValidVersion(%q) accepted", bad)
		}
	}
}

func TestCreateRefuses(t *testing.T) {
	k := newKey(t, "test")
	ps := testParts()
	for name, c := range map[string]struct {
		o  CreateOptions
		ps []testPart
	}{
		"bad version":   {CreateOptions{Board: "rpi", Version: "baa2855", Signers: []Signer{k.signer}}, ps},
		"bad board":     {CreateOptions{Board: "r pi", Version: "v1.0.0", Signers: []Signer{k.signer}}, ps},
		"no signer":     {CreateOptions{Board: "rpi", Version: "v1.0.0"}, ps},
		"tiny chunks":   {CreateOptions{Board: "rpi", Version: "v1.0.0", ChunkSize: 10, Signers: []Signer{k.signer}}, ps},
		"no kernel":     {CreateOptions{Board: "rpi", Version: "v1.0.0", Signers: []Signer{k.signer}}, ps[1:]},
		"two kernels":   {CreateOptions{Board: "rpi", Version: "v1.0.0", Signers: []Signer{k.signer}}, append(ps, testPart{Kernel, "k2", nil})},
		"repeated name": {CreateOptions{Board: "rpi", Version: "v1.0.0", Signers: []Signer{k.signer}}, append(ps, testPart{Boot, "vmlinuz", nil})},
		"path in name":  {CreateOptions{Board: "rpi", Version: "v1.0.0", Signers: []Signer{k.signer}}, append(ps, testPart{Boot, "a/b", nil})},
	} {
		if _, err := Create(io.Discard, c.o, sources(c.ps)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestResume interrupts an install in the middle of the initramfs and
// resumes it from the chunk boundary before the interruption, with the
// manifest verified again from its saved note.
func TestResume(t *testing.T) {
	k := newKey(t, "test")
	ps := testParts()
	b, _ := build(t, "v1.2.0", ps, k)
	ks := keys(t, k)
	for _, cut := range []int{0, 1, testChunk, testChunk + 1, 2*testChunk - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			// First attempt: the connection drops cut bytes into the initramfs.
			m0, _ := Inspect(bytes.NewReader(b))
			stop := int(m0.Parts[1].Offset) + cut
			var tg recTarget
			m, err := Install(bytes.NewReader(b[:stop]), ks, Options{Board: "rpi"}, &tg)
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("interrupted install: %v", err)
			}
			checkVerifiedOnly(t, &tg, ps)
			if m == nil || !bytes.Equal(m.Note, m0.Note) {
				t.Fatal("an install that failed in a part did not return its verified manifest")
			}
			w := tg.parts[len(tg.parts)-1]
			if w.part.Name != "initrd.img" {
				t.Fatalf("interrupted in %s", w.part.Name)
			}
			done := int64(w.got.Len())
			// Later (after a reboot): the saved note, verified again.
			m, err = ParseManifest(m0.Note, ks, Options{Board: "rpi"})
			if err != nil {
				t.Fatal(err)
			}
			off := m.ResumeOffset(1, done)
			if off%testChunk != m.Parts[1].Offset%testChunk {
				t.Fatalf("resume offset %d not on a chunk boundary", off)
			}
			rd, err := Resume(bytes.NewReader(b[off:]), m, off)
			if err != nil {
				t.Fatal(err)
			}
			var tg2 recTarget
			if err := rd.Install(&tg2); err != nil {
				t.Fatal(err)
			}
			if len(tg2.parts) != 2 || tg2.parts[0].start != done/testChunk*testChunk {
				t.Fatalf("resumed parts: %d, first from %d", len(tg2.parts), tg2.parts[0].start)
			}
			whole := append(w.got.Bytes()[:tg2.parts[0].start], tg2.parts[0].got.Bytes()...)
			if !bytes.Equal(whole, ps[1].data) || !bytes.Equal(tg2.parts[1].got.Bytes(), ps[2].data) {
				t.Fatal("resumed bytes differ")
			}
		})
	}
	m, _ := Inspect(bytes.NewReader(b))
	if _, err := Resume(bytes.NewReader(nil), m, m.Parts[1].Offset+1); err == nil {
		t.Error("resume off a chunk boundary accepted")
	}
	// A resumed stream is verified too.
	off := m.Parts[1].Offset + testChunk
	bad := flip(b, int(off)+5, 3)
	rd, err := Resume(bytes.NewReader(bad[off:]), m, off)
	if err != nil {
		t.Fatal(err)
	}
	var tg recTarget
	if err := rd.Install(&tg); !errors.Is(err, ErrCorrupt) || tg.parts[0].got.Len() != 0 || tg.parts[0].aborted == nil {
		t.Errorf("corrupt resumed chunk: %v, target got %d bytes", err, tg.parts[0].got.Len())
	}
}

// TestReaderNext reads parts with Next, leaving one half read (Next
// reads and verifies the rest), and resumes at the very end.
func TestReaderNext(t *testing.T) {
	k := newKey(t, "test")
	ps := testParts()
	b, _ := build(t, "v1.2.0", ps, k)
	rd, err := Open(bytes.NewReader(b), keys(t, k), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := rd.Next()
	if err != nil || s.Name != "vmlinuz" {
		t.Fatal(s, err)
	}
	half := make([]byte, 100)
	if _, err := io.ReadFull(s, half); err != nil || !bytes.Equal(half, ps[0].data[:100]) {
		t.Fatal(err)
	}
	for _, want := range ps[1:] {
		s, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s)
		if err != nil || !bytes.Equal(got, want.data) {
			t.Fatalf("%s: %v", want.name, err)
		}
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("after the last part: %v", err)
	}
	m := rd.Manifest()
	end, err := Resume(bytes.NewReader(nil), m, m.Size())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := end.Next(); err != io.EOF {
		t.Fatalf("resumed at the end: %v", err)
	}
	// The first part corrupt: Next, draining it, reports it.
	rd, _ = Open(bytes.NewReader(flip(b, int(m.Parts[0].Offset)+testChunk, 0)), keys(t, k), Options{})
	rd.Next()
	if _, err := rd.Next(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("draining a corrupt part: %v", err)
	}
	if _, err := rd.Next(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("the error sticks: %v", err)
	}
}

// TestBadManifest: a manifest a trusted key signed is still parsed
// strictly.
func TestBadManifest(t *testing.T) {
	k := newKey(t, "test")
	h := strings.Repeat("ab", 32)
	head := "shoestring bundle 1\nboard rpi\nversion v1.0.0\nbuilt 2026-01-01T00:00:00Z\nchunk 4096\n"
	good := head + "part kernel vmlinuz 10 " + h + "\n" + h + "\npart initramfs initrd.img 0 " + h + "\n"
	for name, text := range map[string]string{
		"unknown line":       head + "hello world\n",
		"no parts":           head,
		"no initramfs":       head + "part kernel vmlinuz 10 " + h + "\n" + h + "\n",
		"missing chunk hash": head + "part kernel vmlinuz 5000 " + h + "\n" + h + "\npart initramfs initrd.img 0 " + h + "\n",
		"extra chunk hash":   good + h + "\n",
		"upper-case hex":     strings.Replace(good, h+"\n", strings.ToUpper(h)+"\n", 1),
		"unknown role":       good + "part firmware x 0 " + h + "\n",
		"path in name":       good + "part boot ../x 0 " + h + "\n",
		"version not semver": strings.Replace(good, "v1.0.0", "dev", 1),
		"format 2":           strings.Replace(good, "bundle 1", "bundle 2", 1),
		"tiny chunks":        strings.Replace(good, "chunk 4096", "chunk 16", 1),
		"size with sign":     strings.Replace(good, "vmlinuz 10", "vmlinuz +10", 1),
		"lines out of order": strings.Replace(good, "board rpi\nversion v1.0.0", "version v1.0.0\nboard rpi", 1),
	} {
		signed, err := note.Sign(&note.Note{Text: text}, k.signer)
		if err != nil {
			t.Fatal(err)
		}
		b := append(header(len(signed)), signed...)
		if _, err := Verify(bytes.NewReader(b), keys(t, k), Options{}); !errors.Is(err, ErrManifest) {
			t.Errorf("%s: %v, want %v", name, err, ErrManifest)
		}
	}
	signed, _ := note.Sign(&note.Note{Text: good}, k.signer)
	b := append(append(header(len(signed)), signed...), make([]byte, 10)...)
	if _, err := Verify(bytes.NewReader(b), keys(t, k), Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("hand-made manifest, zero kernel: %v", err)
	}
}
