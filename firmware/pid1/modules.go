package pid1

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoestring-dns/shoestring/firmware/kmod"
)

// hardware loads the modules devices ask for. Loading a driver makes new
// devices appear (a PCI bridge's children, virtio devices behind
// virtio_pci, a USB NIC behind its hub, iTCO_wdt's platform device behind
// lpc_ich), so it scans until nothing new turns up.
type hardware struct {
	log    *slog.Logger
	loader *kmod.Loader
	mu     sync.Mutex
	seen   map[string]bool // modaliases already handled
}

func newHardware(log *slog.Logger) (*hardware, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, err
	}
	ix, err := kmod.ReadIndex(filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:])))
	if err != nil {
		return nil, err
	}
	return &hardware{log: log, loader: kmod.NewLoader(ix), seen: map[string]bool{}}, nil
}

// load loads modules by name (the board's always-load list).
func (h *hardware) load(names ...string) {
	loaded, err := h.loader.Load(names...)
	if len(loaded) > 0 {
		h.log.Info("modules loaded", "modules", loaded)
	}
	if err != nil {
		h.log.Warn("modules", "err", err)
	}
}

// scan loads the modules new modaliases match; it reports whether any
// module was loaded.
func (h *hardware) scan() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	var want []string
	for _, m := range kmod.Modaliases("/sys") {
		if h.seen[m] {
			continue
		}
		h.seen[m] = true
		want = append(want, h.loader.Index().Match(m)...)
	}
	if len(want) == 0 {
		return false
	}
	loaded, err := h.loader.Load(want...)
	if len(loaded) > 0 {
		h.log.Info("modules loaded", "modules", loaded)
	}
	if err != nil {
		h.log.Warn("modules", "err", err)
	}
	return len(loaded) > 0
}

// settle scans until ready reports true or timeout passes, a scan every
// 100 ms (drivers probe asynchronously, and USB enumerates slowly).
func (h *hardware) settle(ctx context.Context, timeout time.Duration, ready func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		h.scan()
		if ready() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rescan keeps scanning after boot, slowly, for hot-plugged devices (a
// USB NIC put in by a remote hand).
func (h *hardware) rescan(ctx context.Context) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			h.scan()
		}
	}
}
