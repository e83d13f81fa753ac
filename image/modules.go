package image

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shoestring-dns/shoestring/firmware/kmod"
)

// moduleSet is the kernel modules an initramfs carries: the ones a board
// names, everything they depend on, and their soft dependencies, with the
// index files PID 1 (firmware/kmod) reads. Debian ships no modules.dep or
// modules.alias (depmod runs at install), so they are written here from
// each module's .modinfo section.
type moduleSet struct {
	release string
	mods    map[string]*module // by name
	builtin []byte             // modules.builtin as shipped
}

type module struct {
	name    string
	rel     string // path under /lib/modules/RELEASE, uncompressed (.ko)
	data    []byte
	depends []string
	aliases []string
	softPre []string
	softPst []string
}

// selectModules resolves the board's module list against the kernel tree.
func selectModules(k *kernelTree, want []string) (*moduleSet, error) {
	// Every module file in the tree, by name.
	files := map[string]string{}
	err := filepath.WalkDir(filepath.Join(k.modules(), "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(d.Name(), ".ko") {
			rel, _ := filepath.Rel(k.modules(), p)
			files[moduleName(rel)] = filepath.ToSlash(rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	builtin, _ := os.ReadFile(filepath.Join(k.modules(), "modules.builtin"))
	builtinNames := map[string]bool{}
	for _, l := range strings.Split(string(builtin), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			builtinNames[moduleName(l)] = true
		}
	}
	ms := &moduleSet{release: k.release, mods: map[string]*module{}, builtin: builtin}

	var add func(name, why string) error
	add = func(name, why string) error {
		name = normalizeModName(name)
		if ms.mods[name] != nil || builtinNames[name] {
			return nil
		}
		rel, ok := files[name]
		if !ok {
			return fmt.Errorf("module %s (%s) is neither in %s nor built in", name, why, k.release)
		}
		data, err := readModule(filepath.Join(k.modules(), rel))
		if err != nil {
			return err
		}
		m, err := parseModinfo(data)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		m.name, m.rel, m.data = name, moduleFile(rel), data
		ms.mods[name] = m
		for _, d := range m.depends {
			if err := add(d, "needed by "+name); err != nil {
				return err
			}
		}
		return nil
	}
	for _, w := range want {
		if dir, ok := strings.CutSuffix(w, "/"); ok {
			var names []string
			for n, rel := range files {
				if strings.HasPrefix(rel, dir+"/") {
					names = append(names, n)
				}
			}
			if len(names) == 0 {
				return nil, fmt.Errorf("no modules under %s", w)
			}
			sort.Strings(names)
			for _, n := range names {
				if err := add(n, "under "+w); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := add(w, "named by the board"); err != nil {
			return nil, err
		}
	}
	// Soft dependencies name a module or an alias ("crc32c"); take the
	// ones the set can satisfy, by name in the tree or by an alias of a
	// module already in the set. The others are optional accelerations
	// (e.g. crc32c-intel) the generic modules stand in for.
	for changed := true; changed; {
		changed = false
		for _, n := range ms.names() {
			m := ms.mods[n]
			for _, list := range []*[]string{&m.softPre, &m.softPst} {
				var kept []string
				for _, s := range *list {
					target := ms.resolve(s, files)
					if target == "" {
						continue
					}
					if ms.mods[target] == nil && !builtinNames[target] {
						if err := add(target, "soft dependency of "+n); err != nil {
							return nil, err
						}
						changed = true
					}
					kept = append(kept, target)
				}
				*list = kept
			}
		}
	}
	return ms, nil
}

// resolve finds the module a soft dependency names.
func (ms *moduleSet) resolve(s string, files map[string]string) string {
	n := normalizeModName(s)
	if _, ok := files[n]; ok {
		return n
	}
	for _, name := range ms.names() {
		for _, a := range ms.mods[name].aliases {
			if a == s {
				return name
			}
		}
	}
	return ""
}

func (ms *moduleSet) names() []string {
	out := make([]string, 0, len(ms.mods))
	for n := range ms.mods {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// parseModinfo reads a module's .modinfo section: NUL-separated key=value.
func parseModinfo(data []byte) (*module, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	b, err := sec.Data()
	if err != nil {
		return nil, err
	}
	m := &module{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					m.depends = append(m.depends, normalizeModName(d))
				}
			}
		case "alias":
			m.aliases = append(m.aliases, v)
		case "softdep":
			list := &m.softPre
			for _, w := range strings.Fields(v) {
				switch w {
				case "pre:":
					list = &m.softPre
				case "post:":
					list = &m.softPst
				default:
					*list = append(*list, w)
				}
			}
		}
	}
	return m, nil
}

// depClosure lists every module m needs, transitively, in the order
// depmod writes modules.dep: each module before the ones it needs, so
// loading from the end of the list to the start works.
func (ms *moduleSet) depClosure(m *module) []string {
	var order []string
	seen := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		d := ms.mods[n]
		if d == nil { // built in
			return
		}
		for _, x := range d.depends {
			visit(x)
		}
		order = append(order, d.rel)
	}
	for _, x := range m.depends {
		visit(x)
	}
	// order has dependencies first; depmod lists dependents first.
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	return order
}

// indexFiles returns modules.dep, modules.alias, modules.softdep and
// modules.builtin, sorted so that the bytes depend only on the set.
func (ms *moduleSet) indexFiles() map[string][]byte {
	var dep, alias, soft bytes.Buffer
	for _, n := range ms.names() {
		m := ms.mods[n]
		fmt.Fprintf(&dep, "%s:", m.rel)
		for _, d := range ms.depClosure(m) {
			fmt.Fprintf(&dep, " %s", d)
		}
		dep.WriteByte('\n')
		for _, a := range m.aliases {
			fmt.Fprintf(&alias, "alias %s %s\n", a, n)
		}
		if len(m.softPre)+len(m.softPst) > 0 {
			fmt.Fprintf(&soft, "softdep %s", n)
			if len(m.softPre) > 0 {
				fmt.Fprintf(&soft, " pre: %s", strings.Join(m.softPre, " "))
			}
			if len(m.softPst) > 0 {
				fmt.Fprintf(&soft, " post: %s", strings.Join(m.softPst, " "))
			}
			soft.WriteByte('\n')
		}
	}
	return map[string][]byte{
		"modules.dep":     dep.Bytes(),
		"modules.alias":   alias.Bytes(),
		"modules.softdep": soft.Bytes(),
		"modules.builtin": ms.builtin,
	}
}

// check reads the generated index back the way PID 1 will and makes sure
// every module resolves, so a broken index fails the build, not the box.
func (ms *moduleSet) check(dir string) error {
	ix, err := kmod.ReadIndex(dir)
	if err != nil {
		return err
	}
	for _, n := range ms.names() {
		if _, err := ix.Path(n); err != nil {
			return err
		}
	}
	return nil
}

// size is the modules' total uncompressed size.
func (ms *moduleSet) size() int64 {
	var n int64
	for _, m := range ms.mods {
		n += int64(len(m.data))
	}
	return n
}
