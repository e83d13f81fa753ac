package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// Loader loads modules from an index, remembering what it loaded and
// what failed so rescans do not retry a module that cannot load.
type Loader struct {
	ix   *Index
	mu   sync.Mutex
	done map[string]error // module -> nil once loaded, or why it failed
}

// NewLoader returns a loader for the index.
func NewLoader(ix *Index) *Loader {
	return &Loader{ix: ix, done: map[string]error{}}
}

// Index returns the loader's index.
func (l *Loader) Index() *Index { return l.ix }

// Load loads modules (names as the index knows them) with their
// dependencies, soft dependencies first and after. Built-in modules and
// ones already loaded are skipped. It returns the modules it loaded now
// and the errors of those that failed.
func (l *Loader) Load(names ...string) (loaded []string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var prober *kmodule.Prober
	var errs []error
	var load func(n string, depth int)
	load = func(n string, depth int) {
		n = Name(n)
		if _, seen := l.done[n]; seen || l.ix.Builtin(n) || depth > 8 {
			return
		}
		if !l.ix.Has(n) {
			l.done[n] = fmt.Errorf("module %s is not in the initramfs", n)
			errs = append(errs, l.done[n])
			return
		}
		l.done[n] = nil // guards against softdep cycles
		pre, post := l.ix.Soft(n)
		for _, p := range pre {
			load(p, depth+1)
		}
		if prober == nil {
			var perr error
			// The prober reads modules.dep and /proc/modules once; a fresh
			// one per call sees modules loaded since.
			prober, perr = kmodule.NewProber(kmodule.ProbeOpts{RootDir: "/", KVer: filepath.Base(l.ix.Dir)})
			if perr != nil {
				l.done[n] = perr
				errs = append(errs, perr)
				return
			}
		}
		if perr := prober.Probe(n, ""); perr != nil && !errors.Is(perr, unix.EEXIST) {
			l.done[n] = fmt.Errorf("%s: %w", n, perr)
			errs = append(errs, l.done[n])
			return
		}
		loaded = append(loaded, n)
		for _, p := range post {
			load(p, depth+1)
		}
	}
	for _, n := range names {
		load(n, 0)
	}
	return loaded, errors.Join(errs...)
}

// Modaliases returns the modalias of every device on every bus in sysfs
// (sys is normally /sys), sorted. Devices that are not on a bus have none.
func Modaliases(sys string) []string {
	files, _ := filepath.Glob(filepath.Join(sys, "bus", "*", "devices", "*", "modalias"))
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		m := strings.TrimSpace(string(b))
		if m != "" && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// Modprobe is the kernel's request_module helper (/proc/sys/kernel/modprobe
// points at /sbin/modprobe, a link to this binary): `modprobe -q --
// NAME`, where NAME is a module or an alias ("fs-vfat", "crypto-crc32c",
// "net-pf-10"). It returns the exit status.
func Modprobe(args []string) int {
	quiet := false
	var names []string
	for _, a := range args {
		switch {
		case a == "-q" || a == "--quiet":
			quiet = true
		case a == "--" || strings.HasPrefix(a, "-"):
		default:
			names = append(names, a)
		}
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 1
	}
	ix, err := ReadIndex(filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:])))
	if err != nil {
		if !quiet {
			fmt.Fprintln(os.Stderr, "modprobe:", err)
		}
		return 1
	}
	l := NewLoader(ix)
	status := 0
	for _, n := range names {
		mods := ix.Resolve(n)
		if len(mods) == 0 {
			if !quiet {
				fmt.Fprintf(os.Stderr, "modprobe: %s: no such module or alias\n", n)
			}
			status = 1
			continue
		}
		if _, err := l.Load(mods...); err != nil {
			if !quiet {
				fmt.Fprintln(os.Stderr, "modprobe:", err)
			}
			status = 1
		}
	}
	return status
}
