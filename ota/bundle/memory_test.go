package bundle

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// pattern is a large part that is never in memory: byte i is a function
// of i.
type pattern int64

func (p pattern) ReadAt(b []byte, off int64) (int, error) {
	if off >= int64(p) {
		return 0, io.EOF
	}
	n := min(int64(len(b)), int64(p)-off)
	for i := range n {
		x := uint64(off + i)
		b[i] = byte(x ^ x>>8 ^ x>>17)
	}
	if n < int64(len(b)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// heapTarget checks every byte against the pattern without keeping it,
// and samples the heap as it goes.
type heapTarget struct {
	t       *testing.T
	big     pattern
	off     int64
	want    []byte
	samples int
	maxHeap uint64
	ok      bool
}

func (h *heapTarget) Part(p Part, start int64) (PartWriter, error) {
	h.off = start
	h.ok = p.Role == Kernel
	return h, nil
}

func (h *heapTarget) Write(b []byte) (int, error) {
	if h.ok {
		h.want = h.want[:len(b)]
		h.big.ReadAt(h.want, h.off)
		if !bytes.Equal(b, h.want) {
			h.t.Fatalf("byte run at %d differs", h.off)
		}
	}
	h.off += int64(len(b))
	if h.samples++; h.samples%8 == 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.maxHeap = max(h.maxHeap, ms.HeapAlloc)
	}
	return len(b), nil
}
func (h *heapTarget) Commit() error { return nil }
func (h *heapTarget) Abort(_ error) {}

// TestStreamingMemory installs a bundle with a 64 MiB kernel: the heap
// must not grow with the part (one 1 MiB chunk buffer, one copy buffer).
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 64 MiB file")
	}
	k := newKey(t, "test")
	big := pattern(64<<20 + 12345)
	f, err := os.Create(filepath.Join(t.TempDir(), "big.bundle"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Create(f, CreateOptions{Board: "qemu-amd64", Version: "v1.0.0", Built: built, Signers: []Signer{k.signer}}, []Source{
		{Role: Kernel, Name: "vmlinux", Size: int64(big), R: big},
		{Role: Initramfs, Name: "initrd.img", Size: 1000, R: pattern(1000)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	h := &heapTarget{t: t, big: big, want: make([]byte, 64<<10)}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Install(f, keys(t, k), Options{Board: "qemu-amd64"}, h); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if h.off != 1000 || h.samples < 1000 {
		t.Fatalf("target got %d writes", h.samples)
	}
	grew := int64(h.maxHeap) - int64(before.HeapAlloc)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("64 MiB part: heap grew at most %d KiB, %d KiB allocated in all", grew>>10, allocated>>10)
	if grew > 4<<20 {
		t.Errorf("heap grew by %d bytes streaming a 64 MiB part", grew)
	}
	if allocated > 8<<20 {
		t.Errorf("%d bytes allocated streaming a 64 MiB part", allocated)
	}
}
