package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// extractDeb writes the files of a .deb's data archive for which keep
// returns a destination (relative to dir), streaming the archive through
// dpkg-deb, which decompresses it (xz or zstd) far faster than Go would.
// Symbolic links are resolved within the package when kept.
func extractDeb(ctx context.Context, deb, dir string, keep func(name string) (dest string, ok bool)) (int, error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("dpkg-deb (is dpkg installed?): %w", err)
	}
	n, terr := extractTar(stdout, dir, keep)
	if terr != nil {
		// Drain so dpkg-deb does not die of a broken pipe and hide the
		// real error.
		io.Copy(io.Discard, stdout)
	}
	if err := cmd.Wait(); err != nil && terr == nil {
		return n, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %v: %s", filepath.Base(deb), err, stderr.String())
	}
	return n, terr
}

func extractTar(r io.Reader, dir string, keep func(string) (string, bool)) (int, error) {
	tr := tar.NewReader(r)
	n := 0
	links := map[string]string{} // kept symlink dest -> target name in archive
	files := map[string]string{} // archive name -> written path
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		name := strings.TrimPrefix(h.Name, "./")
		dest, ok := keep(name)
		if !ok {
			continue
		}
		path := filepath.Join(dir, dest)
		switch h.Typeflag {
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return n, err
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
			if err != nil {
				return n, err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return n, err
			}
			if err := f.Close(); err != nil {
				return n, err
			}
			files[name] = path
			n++
		case tar.TypeSymlink:
			target := h.Linkname
			if !strings.HasPrefix(target, "/") {
				target = filepath.Join(filepath.Dir("/"+name), target)
			}
			links[path] = strings.TrimPrefix(target, "/")
		}
	}
	for path, target := range links {
		src, ok := files[target]
		if !ok {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return n, err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
