// Package testenv holds the rules every test that needs something from the
// machine follows: outside CI a missing tool or privilege skips the test with
// a message saying what is missing; under CI=true it fails loudly, because a
// test that silently skips in CI proves nothing.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true in the environment).
func InCI() bool { return os.Getenv("CI") == "true" }

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true but "+format, args...)
	}
	t.Skipf(format+" (skipping outside CI; run `make test` as root to install it)", args...)
}

// RequireRoot skips (or fails under CI) when not running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "test needs root")
	}
}

// RequireTool returns the path of an executable, searching PATH and the
// sbin directories Debian puts daemons in; it skips (or fails under CI)
// when the tool is not installed.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := LookTool(name)
	if err != nil {
		missing(t, "tool %q is not installed", name)
	}
	return p
}

// LookTool finds an executable on PATH or in the sbin directories Debian
// installs daemons into (nsd and knotd live in /usr/sbin, which a
// non-login root shell may not have on PATH). For commands; tests use
// RequireTool.
func LookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed (Debian package: see `make deps`)", name)
}

// RepoRoot is the module's root: the nearest directory above the
// working directory (a test runs in its package's) that holds go.mod.
// Not runtime.Caller's file: make test builds with -trimpath, the
// images' flag (so that one build cache serves both), which leaves a
// binary no file paths.
func RepoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		panic("testenv: " + err.Error())
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			panic("testenv: no go.mod in " + wd + " or above it")
		}
	}
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

// Binary builds cmd/shoestring once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shoestring-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "shoestring")
		buildOut, buildErr = build(buildPath)
	})
	if buildErr != nil {
		t.Fatalf("building shoestring: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}

// BinaryWithTags builds cmd/shoestring with extra build tags (a test
// build, such as store's shoestring_format2) into dst.
func BinaryWithTags(t testing.TB, dst string, tags ...string) {
	t.Helper()
	if out, err := build(dst, tags...); err != nil {
		t.Fatalf("building shoestring with tags %v: %v\n%s", tags, err, out)
	}
}

// build builds cmd/shoestring into dst with the build tags of `make
// build` and the images (the Tailscale features the overlay leaves
// out), so tests run what ships, plus extra. -trimpath and no cgo, as
// `make build`, the images and `make test`'s own compiles, so that one
// build cache serves them all but for the tailscale packages the tags
// change.
func build(dst string, extra ...string) ([]byte, error) {
	args := []string{"build", "-trimpath", "-o", dst}
	var tags []string
	if b, err := os.ReadFile(filepath.Join(RepoRoot(), "firmware", "overlay", "buildtags.txt")); err == nil {
		tags = append(tags, strings.TrimSpace(string(b)))
	}
	if tags = append(tags, extra...); len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, "./cmd/shoestring")...)
	cmd.Dir = RepoRoot()
	// Static, as on every box: a host's tenants run it in a root with
	// no dynamic loader.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd.CombinedOutput()
}
