package slot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoestring-dns/shoestring/board"
)

// loader is a boot loader's own slot state.
type loader interface {
	// read returns the committed slot and the slot armed for the next
	// boot only ("" none, or not kept on disk by this loader).
	read() (committed, try string, err error)
	// keepsTry says whether read's try is the truth (false for the Pi,
	// whose flag lives in the firmware until the reboot sets it).
	keepsTry() bool
	arm(slot string) error
	disarm() error
	// commit makes slot the committed one and disarms any trial.
	commit(slot string) error
}

// grubLoader is grub/grubenv, read by the grub.cfg image/grub.go writes:
//
//	load_env
//	if [ "$slot" != "B" ]; then set slot=A; fi
//	if [ -n "$try_slot" ]; then
//	  set boot_slot="$try_slot"; set try_slot=; save_env try_slot
//	...
//	if [ "$boot_slot" != "B" ]; then set boot_slot=A; fi
//
// so the committed slot is B only if slot=B, a non-empty try_slot is
// booted once (as B only if it says B) and cleared, as try_slot= (set,
// empty), before the kernel is loaded: any reset after that boots slot.
//
// Every write rewrites the 1024 bytes in place (writeInPlace): GRUB reads
// and writes the file through its block list and refuses a sparse one, so
// the file must stay the size it is, and on FAT an in-place rewrite of
// unchanged size touches neither the directory nor the FAT. The variables
// (a few dozen bytes) sit in the first 512-byte sector, which the disk
// writes whole, so a cut leaves the old block or the new one. Commit sets
// slot= and clears try_slot= in that one write.
type grubLoader struct{ path string }

func grubenvPath(dir string) string { return filepath.Join(dir, "grub", "grubenv") }

func (g *grubLoader) env() (*Env, error) {
	b, err := os.ReadFile(g.path)
	if err != nil {
		return nil, err
	}
	e, err := ParseEnv(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.path, err)
	}
	return e, nil
}

func (g *grubLoader) read() (string, string, error) {
	e, err := g.env()
	if err != nil {
		return "", "", err
	}
	committed := A
	if v, _ := e.Get("slot"); v == B {
		committed = B
	}
	try := ""
	if v, _ := e.Get("try_slot"); v != "" {
		try = A
		if v == B {
			try = B
		}
	}
	return committed, try, nil
}

func (g *grubLoader) keepsTry() bool { return true }

func (g *grubLoader) set(kv ...string) error {
	e, err := g.env()
	if err != nil {
		return err
	}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Set(kv[i], kv[i+1])
	}
	b, err := e.Marshal()
	if err != nil {
		return err
	}
	return writeInPlace(g.path, b)
}

func (g *grubLoader) arm(slot string) error    { return g.set("try_slot", slot) }
func (g *grubLoader) disarm() error            { return g.set("try_slot", "") }
func (g *grubLoader) commit(slot string) error { return g.set("slot", slot, "try_slot", "") }

// autobootLoader is autoboot.txt (see Autoboot), for the Pi firmware and
// for the QEMU harness, which reads it the same way. The Pi's one-shot
// flag is set by the reboot itself (TrybootRestartArg); the harness's is
// a file named "tryboot" beside autoboot.txt, which the harness deletes
// before it boots the [tryboot] slot, as the firmware clears its flag.
//
// autoboot.txt keeps its size when the slots swap (one digit each), so
// it is rewritten in place, one sector (it is at most 512 bytes), like
// grubenv; a file of another size is replaced atomically instead.
type autobootLoader struct {
	dir      string
	flagFile bool // the harness
}

// TrybootFlag is the harness's one-shot flag file on the boot partition.
const TrybootFlag = "tryboot"

func (a *autobootLoader) path() string { return filepath.Join(a.dir, "autoboot.txt") }

func (a *autobootLoader) parse() (Autoboot, error) {
	b, err := os.ReadFile(a.path())
	if err != nil {
		return Autoboot{}, err
	}
	ab, err := ParseAutoboot(string(b))
	if err != nil {
		return ab, err
	}
	if !ab.TrybootAB {
		return ab, fmt.Errorf("autoboot.txt: no tryboot_a_b=1 under [all] (the firmware would look for tryboot.txt)")
	}
	return ab, nil
}

func (a *autobootLoader) read() (string, string, error) {
	ab, err := a.parse()
	if err != nil {
		return "", "", err
	}
	committed, try, err := ab.Slots()
	if err != nil {
		return "", "", err
	}
	if !a.flagFile || !exists(filepath.Join(a.dir, TrybootFlag)) {
		try = ""
	}
	return committed, try, nil
}

func (a *autobootLoader) keepsTry() bool { return a.flagFile }

func (a *autobootLoader) write(committed string) error {
	want, err := AutobootFor(committed)
	if err != nil {
		return err
	}
	if ab, err := a.parse(); err == nil && ab == want {
		return nil
	}
	return writeSameSize(a.path(), want.Marshal())
}

func (a *autobootLoader) arm(slot string) error {
	// [tryboot] names the slot that is not committed, and slot is that.
	if err := a.write(Other(slot)); err != nil {
		return err
	}
	if a.flagFile {
		return WriteAtomic(filepath.Join(a.dir, TrybootFlag), []byte("try the [tryboot] partition once\n"), 0o644)
	}
	return nil
}

func (a *autobootLoader) disarm() error {
	if a.flagFile {
		return removeSync(filepath.Join(a.dir, TrybootFlag))
	}
	return nil
}

// commit rewrites autoboot.txt first: a cut before the flag is removed
// leaves the old slot, now behind [tryboot], to be booted once, which is
// a working version.
func (a *autobootLoader) commit(slot string) error {
	if err := a.write(slot); err != nil {
		return err
	}
	return a.disarm()
}

// Binary is the boot method of a plain Linux host running `shoestring
// run` under systemd rather than booting our image: the slots are two
// binaries in one directory (BinaryName), "committed" is a symlink to
// the committed one, and the one-shot flag is a file "try" naming the
// slot. SelectBinary, run by the service's launcher, plays GRUB: it
// clears the flag before it starts the slot it names, so a trial binary
// that crashes or hangs is followed by the committed one when systemd
// restarts the service.
const Binary board.BootMethod = "binary"

// BinaryName is the file name of a slot's binary.
func BinaryName(slot string) string { return "shoestring." + slot }

type binaryLoader struct{ dir string }

func (h *binaryLoader) read() (string, string, error) {
	committed := A
	t, err := os.Readlink(filepath.Join(h.dir, "committed"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", "", err
	case t == BinaryName(A):
	case t == BinaryName(B):
		committed = B
	default:
		return "", "", fmt.Errorf("%s/committed points to %q, not %s or %s", h.dir, t, BinaryName(A), BinaryName(B))
	}
	b, err := os.ReadFile(filepath.Join(h.dir, "try"))
	if errors.Is(err, fs.ErrNotExist) {
		return committed, "", nil
	} else if err != nil {
		return "", "", err
	}
	try := strings.TrimSpace(string(b))
	if err := Check(try); err != nil {
		return "", "", fmt.Errorf("%s/try: %w", h.dir, err)
	}
	return committed, try, nil
}

func (h *binaryLoader) keepsTry() bool { return true }

func (h *binaryLoader) arm(slot string) error {
	return WriteAtomic(filepath.Join(h.dir, "try"), []byte(slot+"\n"), 0o644)
}

func (h *binaryLoader) disarm() error { return removeSync(filepath.Join(h.dir, "try")) }

// commit replaces the symlink atomically (a new link renamed over it),
// then clears the flag.
func (h *binaryLoader) commit(slot string) error {
	link := filepath.Join(h.dir, "committed")
	tmp := link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(BinaryName(slot), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncDir(h.dir); err != nil {
		return err
	}
	return h.disarm()
}

// SelectBinary is the host's boot loader: it returns the binary to run
// and its slot — the armed slot once (the flag is removed, durably,
// before this returns), otherwise the committed one. An armed slot
// without its binary is not tried, as grub.cfg skips an empty slot. The
// caller runs the binary with SHOESTRING_SLOT set to the slot (Booted
// reads it).
func SelectBinary(dir string) (path, slot string, err error) {
	h := &binaryLoader{dir: dir}
	committed, try, err := h.read()
	if err != nil {
		return "", "", err
	}
	slot = committed
	if try != "" {
		if err := h.disarm(); err != nil {
			return "", "", err
		}
		if try != committed && exists(filepath.Join(dir, BinaryName(try))) {
			slot = try
		}
	}
	path = filepath.Join(dir, BinaryName(slot))
	if !exists(path) {
		return "", "", fmt.Errorf("slot %s: no binary %s", slot, path)
	}
	return path, slot, nil
}
