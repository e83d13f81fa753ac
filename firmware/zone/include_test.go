package zone

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// includeTree lays out a zone directory with includes, next to a directory
// the includes must not reach.
func includeTree(t *testing.T) (dir, outside string) {
	t.Helper()
	base := t.TempDir()
	dir = filepath.Join(base, "zones")
	outside = filepath.Join(base, "outside")
	files := map[string]string{
		"zones/hosts.zone":       "www A 192.0.2.1\n\nmail A 192.0.2.2\n",
		"zones/sub/inner.zone":   "x A 192.0.2.3\n$INCLUDE ../leaf.zone\n",
		"zones/leaf.zone":        "; leaf\ny A 192.0.2.4\n",
		"zones/sub/escape.zone":  "$INCLUDE ../../outside/secret.zone\n",
		"outside/secret.zone":    "secret A 192.0.2.5\n",
		"zones/sub/deeper.zone":  "ok A 192.0.2.6\n",
		"zones/sub/climb.zone":   "$INCLUDE ../sub/../sub/deeper.zone\n",
		"zones/loop.zone":        "$INCLUDE loop.zone\n",
		"zones/sub/nested1.zone": "$INCLUDE escape.zone\n",
	}
	for name, text := range files {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../outside/secret.zone", filepath.Join(dir, "link.zone")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hosts.zone", filepath.Join(dir, "alias.zone")); err != nil {
		t.Fatal(err)
	}
	return dir, outside
}

func writeMain(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "main.zone")
	if err := os.WriteFile(p, []byte(soaNS+body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIncludeInsideDir(t *testing.T) {
	dir, _ := includeTree(t)
	main := writeMain(t, dir, "$INCLUDE hosts.zone\n$INCLUDE sub/inner.zone sub\n$INCLUDE sub/climb.zone\nafter A 192.0.2.9\n")
	z, err := ParseFile(main, "example.com.")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Position{}
	for i, rr := range z.Records {
		got[rr.Header().Name] = z.Pos[i]
	}
	want := map[string]Position{
		"www.example.com.":   {filepath.Join(dir, "hosts.zone"), 1},
		"mail.example.com.":  {filepath.Join(dir, "hosts.zone"), 3},
		"x.sub.example.com.": {filepath.Join(dir, "sub/inner.zone"), 1},
		"y.sub.example.com.": {filepath.Join(dir, "leaf.zone"), 2},
		"ok.example.com.":    {filepath.Join(dir, "sub/deeper.zone"), 1},
		"after.example.com.": {main, 7},
		"example.com.":       {main, 3}, // the NS; the SOA on line 2 shares the owner
	}
	for name, pos := range want {
		if got[name] != pos {
			t.Errorf("%s at %v, want %v", name, got[name], pos)
		}
	}
	if len(z.Records) != 8 {
		t.Errorf("%d records, want 8", len(z.Records))
	}

	// A symlink that stays inside the directory is fine.
	main = writeMain(t, dir, "$INCLUDE alias.zone\n")
	if _, err := ParseFile(main, "example.com."); err != nil {
		t.Errorf("symlink inside the directory: %v", err)
	}
}

func TestIncludeRefused(t *testing.T) {
	dir, outside := includeTree(t)
	for _, tc := range []struct{ name, body, want string }{
		{"dotdot", "$INCLUDE ../outside/secret.zone\n", `main.zone:4: $INCLUDE "../outside/secret.zone" refused: outside the include directory`},
		{"absolute", "$INCLUDE " + filepath.Join(outside, "secret.zone") + "\n", `main.zone:4: $INCLUDE "` + outside},
		{"nested", "$INCLUDE sub/escape.zone\n", `sub/escape.zone:1: $INCLUDE "../../outside/secret.zone" refused: outside`},
		{"nested twice", "$INCLUDE sub/nested1.zone\n", `sub/escape.zone:1: $INCLUDE "../../outside/secret.zone" refused`},
		{"symlink", "$INCLUDE link.zone\n", `main.zone:4: $INCLUDE "link.zone" refused: outside the include directory`},
		{"directory", "$INCLUDE sub\n", `main.zone:4: $INCLUDE "sub" refused: not a regular file`},
		{"missing", "$INCLUDE nope.zone\n", `main.zone:4: $INCLUDE "nope.zone" refused: no such file in`},
		{"loop", "$INCLUDE loop.zone\n", `loop.zone:1: too deeply nested $INCLUDE`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			main := writeMain(t, dir, tc.body)
			_, err := ParseFile(main, "example.com.")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "192.0.2.5") || strings.Contains(err.Error(), includeMarker) {
				t.Errorf("error leaks: %q", err)
			}
		})
	}
}
