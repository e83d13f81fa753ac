// Package kmod finds and loads kernel modules on the box: it reads the
// depmod-format index the image builder writes into the initramfs
// (modules.dep, modules.alias, modules.softdep, modules.builtin), matches
// device modaliases from sysfs against it, and loads modules with their
// dependencies through u-root's kmodule. It also answers the kernel's own
// requests (request_module → /sbin/modprobe) so nothing needs kmod.
package kmod

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Index is a module directory's index.
type Index struct {
	Dir      string              // /lib/modules/RELEASE
	paths    map[string]string   // module name -> path relative to Dir
	aliases  []alias             // in file order
	softPre  map[string][]string // module -> modules to load first
	softPost map[string][]string
	builtin  map[string]bool
}

type alias struct{ pattern, module string }

// Name normalises a module name the way the kernel does (dashes and
// underscores are the same).
func Name(s string) string { return strings.ReplaceAll(s, "-", "_") }

// ReadIndex reads the index in dir. modules.dep is required; the other
// files are optional.
func ReadIndex(dir string) (*Index, error) {
	ix := &Index{Dir: dir, paths: map[string]string{}, softPre: map[string][]string{}, softPost: map[string][]string{}, builtin: map[string]bool{}}
	if err := eachLine(filepath.Join(dir, "modules.dep"), true, func(l string) {
		p, _, ok := strings.Cut(l, ":")
		if ok {
			ix.paths[moduleName(p)] = strings.TrimSpace(p)
		}
	}); err != nil {
		return nil, err
	}
	eachLine(filepath.Join(dir, "modules.alias"), false, func(l string) {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "alias" {
			ix.aliases = append(ix.aliases, alias{f[1], Name(f[2])})
		}
	})
	eachLine(filepath.Join(dir, "modules.softdep"), false, func(l string) {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "softdep" {
			return
		}
		mod, list := Name(f[1]), &ix.softPre
		for _, w := range f[2:] {
			switch w {
			case "pre:":
				list = &ix.softPre
			case "post:":
				list = &ix.softPost
			default:
				(*list)[mod] = append((*list)[mod], Name(w))
			}
		}
	})
	eachLine(filepath.Join(dir, "modules.builtin"), false, func(l string) {
		ix.builtin[moduleName(l)] = true
	})
	return ix, nil
}

func eachLine(path string, required bool, fn func(string)) error {
	f, err := os.Open(path)
	if err != nil {
		if !required && os.IsNotExist(err) {
			return nil
		}
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			fn(l)
		}
	}
	return sc.Err()
}

func moduleName(p string) string {
	b := filepath.Base(strings.TrimSpace(p))
	b, _, _ = strings.Cut(b, ".ko")
	return Name(b)
}

// Has reports whether the index has the module (as a file).
func (ix *Index) Has(name string) bool { _, ok := ix.paths[Name(name)]; return ok }

// Builtin reports whether the module is built into the kernel.
func (ix *Index) Builtin(name string) bool { return ix.builtin[Name(name)] }

// Resolve turns what the kernel or a user asks for (a module name or an
// alias such as "fs-ext4" or "crypto-crc32c") into module names.
func (ix *Index) Resolve(name string) []string {
	if n := Name(name); ix.Has(n) || ix.Builtin(n) {
		return []string{n}
	}
	return ix.Match(name)
}

// Match returns the modules whose aliases match a modalias, without
// duplicates, in index order.
func (ix *Index) Match(modalias string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range ix.aliases {
		if !seen[a.module] && Glob(a.pattern, modalias) {
			seen[a.module] = true
			out = append(out, a.module)
		}
	}
	return out
}

// Soft returns a module's soft dependencies.
func (ix *Index) Soft(name string) (pre, post []string) {
	n := Name(name)
	return ix.softPre[n], ix.softPost[n]
}

// Path returns a module's file.
func (ix *Index) Path(name string) (string, error) {
	p, ok := ix.paths[Name(name)]
	if !ok {
		return "", fmt.Errorf("module %s is not in %s", name, ix.Dir)
	}
	return filepath.Join(ix.Dir, p), nil
}
