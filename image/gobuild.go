package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/board"
)

// buildBinary cross-compiles cmd/shoestring for the board: no cgo (a
// static binary, nothing else in the initramfs), -trimpath and no VCS
// stamp (the same source makes the same bytes wherever it is checked
// out), stripped (-s -w: the symbol table and DWARF are a third of the
// size, and panics still print function names and lines).
func buildBinary(ctx context.Context, repo, out string, b *board.Board, version string, pr *progress) error {
	pr.step("go build ./cmd/shoestring (GOARCH=%s%s)", b.GOARCH, map[bool]string{true: " GO386=" + b.GO386}[b.GO386 != ""])
	start := time.Now()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -X main.version=" + version}
	// The same build tags as `make build`: the Tailscale features the
	// overlay leaves out.
	if tags, err := os.ReadFile(filepath.Join(repo, "firmware", "overlay", "buildtags.txt")); err == nil {
		if t := strings.TrimSpace(string(tags)); t != "" {
			args = append(args, "-tags", t)
		}
	}
	args = append(args, "-o", out, "./cmd/shoestring")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+b.GOARCH, "GOFLAGS=-mod=readonly")
	if b.GO386 != "" {
		cmd.Env = append(cmd.Env, "GO386="+b.GO386)
	}
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s: %v\n%s", b.Name, err, o)
	}
	if fi, err := os.Stat(out); err == nil {
		pr.done("%s (%s in %s)", filepath.Base(out), mib(fi.Size()), time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}
