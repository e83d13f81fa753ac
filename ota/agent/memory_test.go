package agent_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/agent"
	"github.com/shoestring-dns/shoestring/ota/agent/agenttest"
	"github.com/shoestring-dns/shoestring/ota/bundle"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// pattern is a part never in memory: byte i is a function of i.
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

// TestInstallMemory installs a bundle with a 48 MiB kernel from a file
// into a GRUB slot: the heap must not grow with the bundle.
func TestInstallMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100 MiB of files")
	}
	r := agenttest.New(t, board.GRUBEnv)
	a := r.Agent(t, "v1.0.0")
	p := agenttest.MakeParts(t, "v1.1.0")
	big := pattern(48<<20 + 777)
	path := filepath.Join(t.TempDir(), "big.bundle")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := bundle.Create(f, bundle.CreateOptions{Board: agenttest.Board, Version: "v1.1.0", Built: agenttest.Epoch, Signers: []bundle.Signer{r.Signer}}, []bundle.Source{
		{Role: bundle.Kernel, Name: "vmlinux", Size: int64(big), R: big},
		{Role: bundle.Initramfs, Name: "initrd.img", Size: int64(len(p.Initramfs)), R: bytesReaderAt(p.Initramfs)},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	stop, peak := make(chan struct{}), make(chan uint64)
	go func() {
		var m uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				peak <- m
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				m = max(m, ms.HeapAlloc)
			}
		}
	}()
	_, err = a.Install(context.Background(), f, agent.Request{})
	close(stop)
	grew := int64(<-peak) - int64(base)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(r.SlotDirs[slot.B], "vmlinux"))
	if err != nil || st.Size() != int64(big) {
		t.Fatalf("kernel in slot B: %v %v", st, err)
	}
	t.Logf("heap grew by at most %.1f MiB installing a %d MiB bundle", float64(grew)/(1<<20), big>>20)
	if grew > 8<<20 {
		t.Errorf("heap grew by %d bytes: the bundle is being held in memory", grew)
	}
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
