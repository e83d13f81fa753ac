package slot

import (
	"bytes"
	"strings"
	"testing"
)

func TestEnvRoundTrip(t *testing.T) {
	e := NewEnv()
	e.Set("slot", "A")
	e.Set("try_slot", "B")
	e.Set("odd", "back\\slash\nnew line")
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != EnvSize {
		t.Fatalf("%d bytes", len(b))
	}
	want := "# GRUB Environment Block\nslot=A\ntry_slot=B\nodd=back\\\\slash\\\nnew line\n#"
	if !strings.HasPrefix(string(b), want) || strings.Trim(string(b[len(want):]), "#") != "" {
		t.Fatalf("block %q", b[:80])
	}
	got, err := ParseEnv(b)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Names(), ",") != "slot,try_slot,odd" {
		t.Fatalf("names %v", got.Names())
	}
	for _, n := range e.Names() {
		if v, _ := got.Get(n); v != e.vals[n] {
			t.Errorf("%s=%q, want %q", n, v, e.vals[n])
		}
	}
	got.Delete("odd")
	got.Set("try_slot", "")
	b2, _ := got.Marshal()
	if !strings.HasPrefix(string(b2), "# GRUB Environment Block\nslot=A\ntry_slot=\n##") {
		t.Fatalf("after delete %q", b2[:50])
	}
}

func TestEnvRejects(t *testing.T) {
	good, _ := GRUBEnv("slot", "A")
	pad := func(s string) []byte {
		return []byte(s + strings.Repeat("#", EnvSize-len(s)))
	}
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"short":         {good[:1000], "1000 bytes, want 1024"},
		"empty":         {nil, "0 bytes"},
		"long":          {append(append([]byte{}, good...), '#'), "1025 bytes"},
		"signature":     {pad("# GRUB Environment\nslot=A\n"), "does not start with"},
		"zeroed":        {make([]byte, EnvSize), "does not start with"},
		"torn":          {append(pad("# GRUB Environment Block\nslot=A\n")[:600], make([]byte, 424)...), "NUL byte at offset 600"},
		"no newline":    {pad("# GRUB Environment Block\nslot=A"), "does not follow a newline"},
		"no equals":     {pad("# GRUB Environment Block\nslot\ntry_slot=B\n"), `line 2: "slot" has no '='`},
		"empty name":    {pad("# GRUB Environment Block\n=A\n"), "empty variable name"},
		"escaped end":   {pad("# GRUB Environment Block\nslot=A\\\n"), "not ended by a newline"},
		"full, no pad":  {[]byte("# GRUB Environment Block\nx=" + strings.Repeat("y", EnvSize-len("# GRUB Environment Block\nx=")-1) + "\n"), ""},
		"comment lines": {pad("# GRUB Environment Block\n# a comment\nslot=B\n"), ""},
	}
	for name, c := range cases {
		_, err := ParseEnv(c.b)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", name, err, c.want)
		}
	}
	e := NewEnv()
	e.Set("big", strings.Repeat("x", EnvSize))
	if _, err := e.Marshal(); err == nil {
		t.Error("an oversized block was written")
	}
	e = NewEnv()
	e.Set("a=b", "c")
	if _, err := e.Marshal(); err == nil {
		t.Error("a name with '=' was written")
	}
}

// grubSaveEnv does what GRUB's save_env does to a block (envblk.c's
// grub_envblk_set, written from its behaviour): the value of an existing
// variable is replaced where it stands, a new one is appended at the
// start of the '#' free space, the block keeps its size. It returns
// false where GRUB fails ("environment block too small" or broken).
func grubSaveEnv(buf []byte, name, value string) bool {
	var ev []byte
	for i := 0; i < len(value); i++ {
		if value[i] == '\\' || value[i] == '\n' {
			ev = append(ev, '\\')
		}
		ev = append(ev, value[i])
	}
	space := len(buf) - 1
	for space >= 0 && buf[space] == '#' {
		space--
	}
	if space < 0 || buf[space] != '\n' {
		return false
	}
	space++
	p := len(envSignature)
	for p+len(name)+1 < space {
		if bytes.HasPrefix(buf[p:], []byte(name+"=")) {
			start := p + len(name) + 1
			end := start
			for end < len(buf) && buf[end] != '\n' {
				if buf[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(buf) || space+len(ev)-(end-start) > len(buf) {
				return false
			}
			out := append(append(append([]byte{}, buf[:start]...), ev...), buf[end:space]...)
			out = append(out, bytes.Repeat([]byte("#"), len(buf)-len(out))...)
			copy(buf, out)
			return true
		}
		p = nextLine(buf, p)
	}
	line := append(append([]byte(name+"="), ev...), '\n')
	if space+len(line) > len(buf) {
		return false
	}
	copy(buf[space:], line)
	return true
}

// What GRUB writes, we read; what we write, GRUB can save into.
func TestEnvGRUBCompatible(t *testing.T) {
	b, _ := GRUBEnv("slot", "A", "try_slot", "B")
	if !grubSaveEnv(b, "try_slot", "") {
		t.Fatal("GRUB could not save_env into our block")
	}
	if !grubSaveEnv(b, "boot_count", "a\\b") {
		t.Fatal("GRUB could not append")
	}
	e, err := ParseEnv(b)
	if err != nil {
		t.Fatalf("%v in %q", err, b[:80])
	}
	for k, want := range map[string]string{"slot": "A", "try_slot": "", "boot_count": "a\\b"} {
		if v, ok := e.Get(k); !ok || v != want {
			t.Errorf("%s=%q (%v), want %q", k, v, ok, want)
		}
	}
	again, _ := e.Marshal()
	if !bytes.Equal(again, b) {
		t.Errorf("re-encoding changed the block:\n%q\n%q", again[:80], b[:80])
	}
}
