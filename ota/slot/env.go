package slot

import (
	"bytes"
	"fmt"
	"strings"
)

// GRUB's environment block (grub-core/lib/envblk.c, grub-editenv):
//
//   - the file starts with the signature "# GRUB Environment Block\n";
//   - then one variable per line, NAME=VALUE, where a backslash in the
//     value escapes the next byte: GRUB writes "\\" for a backslash and
//     "\" followed by a newline for a newline; names are not escaped and
//     end at the first '=';
//   - a line starting with '#' is a comment, and the unused rest of the
//     block is '#' padding, preceded by the newline of the last variable
//     (save_env looks for that newline to find the free space and fails
//     with "environment block too small" without it);
//   - grub-editenv creates the block 1024 bytes long, and save_env never
//     changes a file's size: it rewrites the file's own sectors through
//     their block list, refusing sparse files.
const (
	EnvSize      = 1024
	envSignature = "# GRUB Environment Block\n"
)

// Env is a GRUB environment block's variables, in file order.
type Env struct {
	names []string
	vals  map[string]string
}

// NewEnv returns an empty environment.
func NewEnv() *Env { return &Env{vals: map[string]string{}} }

// Get returns a variable and whether it is set.
func (e *Env) Get(name string) (string, bool) {
	v, ok := e.vals[name]
	return v, ok
}

// Set sets a variable; a new one goes last, as save_env appends it.
func (e *Env) Set(name, value string) {
	if _, ok := e.vals[name]; !ok {
		e.names = append(e.names, name)
	}
	e.vals[name] = value
}

// Delete removes a variable.
func (e *Env) Delete(name string) {
	if _, ok := e.vals[name]; !ok {
		return
	}
	delete(e.vals, name)
	for i, n := range e.names {
		if n == name {
			e.names = append(e.names[:i], e.names[i+1:]...)
			break
		}
	}
}

// Names lists the variables in file order.
func (e *Env) Names() []string { return append([]string(nil), e.names...) }

// ParseEnv reads a grubenv block. It is stricter than GRUB, which stops
// quietly at the first broken line: anything GRUB would not read whole,
// or could not save_env into afterwards (try_slot is cleared that way on
// every trial boot), is an error.
func ParseEnv(b []byte) (*Env, error) {
	if len(b) != EnvSize {
		return nil, fmt.Errorf("grubenv is %d bytes, want %d (truncated or not made by grub-editenv)", len(b), EnvSize)
	}
	if !bytes.HasPrefix(b, []byte(envSignature)) {
		return nil, fmt.Errorf("grubenv does not start with %q", strings.TrimSpace(envSignature))
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return nil, fmt.Errorf("grubenv has a NUL byte at offset %d (a torn or zeroed write?)", i)
	}
	// The free space: trailing '#', which must follow a newline.
	end := len(b)
	for end > 0 && b[end-1] == '#' {
		end--
	}
	if b[end-1] != '\n' {
		return nil, fmt.Errorf("grubenv: the padding at offset %d does not follow a newline (GRUB's save_env would fail)", end)
	}
	e := NewEnv()
	p := len(envSignature)
	for line := 2; p < end; line++ {
		if b[p] == '#' {
			p = nextLine(b, p)
			continue
		}
		eq := bytes.IndexByte(b[p:end], '=')
		nl := bytes.IndexByte(b[p:end], '\n')
		if eq < 0 || (nl >= 0 && nl < eq) {
			return nil, fmt.Errorf("grubenv line %d: %q has no '='", line, firstLine(b[p:end]))
		}
		name := string(b[p : p+eq])
		var v strings.Builder
		q := p + eq + 1
		for ; q < end && b[q] != '\n'; q++ {
			if b[q] == '\\' {
				q++
				if q >= end {
					break
				}
			}
			v.WriteByte(b[q])
		}
		if q >= end {
			return nil, fmt.Errorf("grubenv line %d: variable %q is not ended by a newline", line, name)
		}
		if name == "" {
			return nil, fmt.Errorf("grubenv line %d: empty variable name", line)
		}
		e.Set(name, v.String())
		line += strings.Count(v.String(), "\n")
		p = q + 1
	}
	return e, nil
}

// nextLine is GRUB's find_next_line: past the next unescaped newline.
func nextLine(b []byte, p int) int {
	for p < len(b) {
		switch b[p] {
		case '\\':
			p += 2
			continue
		case '\n':
			return p + 1
		}
		p++
	}
	return p
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

// Marshal writes the block: the signature, the variables escaped as GRUB
// escapes them, and '#' up to EnvSize. Comment lines of a parsed block
// are not kept.
func (e *Env) Marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(envSignature)
	for _, n := range e.names {
		if n == "" || strings.ContainsAny(n, "=\n\\") || n[0] == '#' {
			return nil, fmt.Errorf("grubenv: %q cannot be a variable name", n)
		}
		b.WriteString(n)
		b.WriteByte('=')
		v := e.vals[n]
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' || v[i] == '\n' {
				b.WriteByte('\\')
			}
			b.WriteByte(v[i])
		}
		b.WriteByte('\n')
	}
	if b.Len() > EnvSize {
		return nil, fmt.Errorf("grubenv: variables take %d bytes, more than the %d-byte block", b.Len(), EnvSize)
	}
	for b.Len() < EnvSize {
		b.WriteByte('#')
	}
	return b.Bytes(), nil
}

// GRUBEnv is the block the image builder writes: the variables set in
// the given order.
func GRUBEnv(kv ...string) ([]byte, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("grubenv: odd number of arguments")
	}
	e := NewEnv()
	for i := 0; i < len(kv); i += 2 {
		e.Set(kv[i], kv[i+1])
	}
	return e.Marshal()
}
