// Package agenttest builds what tests of the OTA agent need: a temporary
// slot layout for a boot method (a directory standing in for the boot
// partition and one for each slot partition, or the binary slots'
// directory), a signing key, and bundles made from generated parts.
package agenttest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/agent"
	"github.com/shoestring-dns/shoestring/ota/bundle"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// Board is the board of every rig and bundle here.
const Board = "qemu-amd64"

// Epoch is the bundles' build time.
var Epoch = time.Unix(1_700_000_000, 0)

// ChunkSize is the bundles' chunk size: small, so parts have many chunks.
const ChunkSize = 4096

// Rig is a slot layout in temporary directories: slot A committed and
// running, slot B holding an older version's files.
type Rig struct {
	Method board.BootMethod
	// Boot stands in for the boot partition (grubenv, autoboot.txt); for
	// binary slots it is the binaries' directory.
	Boot string
	// SlotDirs are the slot partitions (both Boot for binary slots).
	SlotDirs  map[string]string
	StateFile string // slot state
	OTAFile   string // the agent's outcome
	Slots     slot.Slots
	Signer    bundle.Signer
	PubKey    string
	Keys      *bundle.Keys
}

// New makes a rig for method (board.GRUBEnv, board.Harness,
// board.Tryboot or slot.Binary).
func New(t testing.TB, method board.BootMethod) *Rig {
	t.Helper()
	root := t.TempDir()
	r := &Rig{Method: method, Boot: filepath.Join(root, "boot"), SlotDirs: map[string]string{},
		StateFile: filepath.Join(root, "perm", "ota", "slots.json"), OTAFile: filepath.Join(root, "perm", "ota", "update.json")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(r.Boot, 0o755))
	switch method {
	case board.GRUBEnv:
		must(os.MkdirAll(filepath.Join(r.Boot, "grub"), 0o755))
		env, err := slot.GRUBEnv("slot", slot.A)
		must(err)
		must(os.WriteFile(filepath.Join(r.Boot, "grub", "grubenv"), env, 0o644))
	case board.Harness, board.Tryboot:
		ab, err := slot.AutobootFor(slot.A)
		must(err)
		must(os.WriteFile(filepath.Join(r.Boot, "autoboot.txt"), ab.Marshal(), 0o644))
	}
	for _, s := range []string{slot.A, slot.B} {
		if method == slot.Binary {
			r.SlotDirs[s] = r.Boot
			must(os.WriteFile(filepath.Join(r.Boot, slot.BinaryName(s)), []byte("old binary of slot "+s), 0o755))
			continue
		}
		d := filepath.Join(root, "slot-"+s)
		must(os.MkdirAll(d, 0o755))
		must(os.WriteFile(filepath.Join(d, "vmlinux"), []byte("old kernel of slot "+s), 0o644))
		must(os.WriteFile(filepath.Join(d, "initrd.img"), []byte("old initramfs of slot "+s), 0o644))
		must(os.WriteFile(filepath.Join(d, "cmdline.txt"), []byte("shoestring.slot="+s+"\n"), 0o644))
		r.SlotDirs[s] = d
	}
	var err error
	r.Slots, err = slot.New(slot.Config{Method: method, Dir: r.Boot, StateFile: r.StateFile})
	must(err)
	r.Signer, r.PubKey = Key(t, "test")
	r.Keys, err = bundle.ParseKeys(r.PubKey)
	must(err)
	return r
}

// Layout is the rig's agent.Layout, running slot A.
func (r *Rig) Layout() agent.Layout {
	return agent.Layout{
		Method:  r.Method,
		Slots:   r.Slots,
		SlotDir: func(s string) (string, func() error, error) { return r.SlotDirs[s], nil, nil },
		Booted:  slot.A,
		Board:   Board,
		Cmdline: func(s string) string {
			if r.Method == slot.Binary {
				return ""
			}
			return "console=ttyS0 shoestring.slot=" + s
		},
	}
}

// Agent returns an agent on the rig running version running.
func (r *Rig) Agent(t testing.TB, running string) *agent.Agent {
	t.Helper()
	a, err := agent.New(agent.Config{Layout: r.Layout(), Keys: r.Keys, Running: running, StateFile: r.OTAFile,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Parts are a bundle's generated files.
type Parts struct {
	Kernel, Initramfs []byte
	// Init is /init inside Initramfs: the firmware binary.
	Init []byte
}

// MakeParts generates a kernel and a zstd-compressed newc initramfs
// holding /init, different for each version.
func MakeParts(t testing.TB, version string) Parts {
	t.Helper()
	seed := sha256.Sum256([]byte(version))
	rng := rand.New(rand.NewChaCha8(seed))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	p := Parts{Kernel: append([]byte("kernel "+version+"\n"), random(50_000)...)}
	p.Init = append([]byte("#!firmware "+version+"\n"), random(120_000)...)
	var raw bytes.Buffer
	w := cpio.Newc.Writer(&raw)
	for _, rec := range []cpio.Record{
		cpio.Directory("bin", 0o755),
		cpio.StaticFile("bin/busybox", string(random(9_000)), 0o755),
		cpio.StaticFile("init", string(p.Init), 0o755),
		cpio.Symlink("sbin", "bin"),
	} {
		if err := w.WriteRecord(cpio.MakeReproducible(rec)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	p.Initramfs = enc.EncodeAll(raw.Bytes(), nil)
	return p
}

// Bundle makes a bundle of p for board, signed by the rig's key (or by
// signer when not nil).
func (r *Rig) Bundle(t testing.TB, board, version string, p Parts, signer bundle.Signer) []byte {
	t.Helper()
	if signer == nil {
		signer = r.Signer
	}
	var b bytes.Buffer
	_, err := bundle.Create(&b, bundle.CreateOptions{Board: board, Version: version, Built: Epoch, ChunkSize: ChunkSize, Signers: []bundle.Signer{signer}}, []bundle.Source{
		{Role: bundle.Kernel, Name: "vmlinux", Size: int64(len(p.Kernel)), R: bytes.NewReader(p.Kernel)},
		{Role: bundle.Initramfs, Name: "initrd.img", Size: int64(len(p.Initramfs)), R: bytes.NewReader(p.Initramfs)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Hashes returns the SHA-256 of every file in slot s's directory (for
// binary slots, of that slot's binary), temporary files included.
func (r *Rig) Hashes(t testing.TB, s string) map[string]string {
	t.Helper()
	dir := r.SlotDirs[s]
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if r.Method == slot.Binary && e.Name() != slot.BinaryName(s) && e.Name()[0] != '.' {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		h[e.Name()] = hex.EncodeToString(sum[:])
	}
	return h
}

// Names lists a map's keys, sorted.
func Names(m map[string]string) []string {
	var n []string
	for k := range m {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Key makes a new signing key named name: its signer, and its public key
// as a node's ota.keys lists it.
func Key(tb testing.TB, name string) (bundle.Signer, string) {
	tb.Helper()
	priv, pub, err := bundle.GenerateKey(name)
	if err != nil {
		tb.Fatal(err)
	}
	signer, _, err := bundle.ParseSigner(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return signer, pub
}

// HostBundle writes DIR/VERSION.bundle for binary slots (a plain Linux
// host, `shoestring launch -slots`): its initramfs holds init, the program
// the slot runs; the kernel part is verified and dropped on a host.
func HostBundle(tb testing.TB, dir, version string, signer bundle.Signer, init []byte) string {
	tb.Helper()
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	if err := w.WriteRecord(cpio.StaticRecord(init, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755})); err != nil {
		tb.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		tb.Fatal(err)
	}
	kernel := []byte("no kernel on a host")
	path := filepath.Join(dir, version+".bundle")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	_, err = bundle.Create(f, bundle.CreateOptions{Board: Board, Version: version, Built: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Signers: []bundle.Signer{signer}},
		[]bundle.Source{
			{Role: bundle.Kernel, Name: "vmlinux", Size: int64(len(kernel)), R: bytes.NewReader(kernel)},
			{Role: bundle.Initramfs, Name: "initrd.img", Size: int64(buf.Len()), R: bytes.NewReader(buf.Bytes())},
		})
	if err != nil {
		tb.Fatal(err)
	}
	return path
}
