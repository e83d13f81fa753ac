package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/board"
)

// aptSources are the suites the pinned packages come from. main has the
// kernels and GRUB, non-free-firmware the Pi firmware.
const aptSources = `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main non-free-firmware
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main non-free-firmware
`

// fetcher downloads pinned Debian packages with apt-get download into
// a cache, checking each .deb against its pinned SHA-256. apt runs with
// its own configuration and state under the cache, so the build host's
// sources, architectures and package state are neither read nor changed
// (no dpkg --add-architecture: the private config lists amd64, arm64 and
// i386 itself), and apt still checks the archive's signatures.
type fetcher struct {
	cache    string // out/cache
	progress *progress
	updated  bool
}

func (f *fetcher) aptDir() string { return filepath.Join(f.cache, "apt") }
func (f *fetcher) debDir() string { return filepath.Join(f.cache, "debs") }

// aptArgs points apt at the private tree.
func (f *fetcher) aptArgs() []string {
	d := f.aptDir()
	args := []string{
		"-o", "Dir::Etc=" + filepath.Join(d, "etc"),
		"-o", "Dir::Etc::SourceList=" + filepath.Join(d, "etc", "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(d, "etc", "sources.list.d"),
		"-o", "Dir::Etc::Preferences=" + filepath.Join(d, "etc", "preferences"),
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(d, "etc", "preferences.d"),
		"-o", "Dir::State=" + filepath.Join(d, "state"),
		"-o", "Dir::State::status=" + filepath.Join(d, "state", "status"),
		"-o", "Dir::Cache=" + filepath.Join(d, "cache"),
		"-o", "APT::Architecture=amd64",
		"-o", "APT::Architectures=amd64,arm64,i386",
		"-o", "Acquire::Languages=none",
		"-o", "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::CNF::DefaultEnabled=false",
		"-o", "Acquire::Retries=3",
		"-o", "Debug::NoLocking=1",
		"-q",
	}
	if os.Geteuid() == 0 {
		// apt drops to _apt for downloads, which may not be able to
		// write our cache; as a user apt runs as that user anyway.
		args = append(args, "-o", "APT::Sandbox::User=root")
	}
	return args
}

func (f *fetcher) setup() error {
	d := f.aptDir()
	for _, sub := range []string{"etc/sources.list.d", "etc/preferences.d", "state/lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(d, "etc", "sources.list"), []byte(aptSources), 0o644); err != nil {
		return err
	}
	status := filepath.Join(d, "state", "status")
	if _, err := os.Stat(status); err != nil {
		if err := os.WriteFile(status, nil, 0o644); err != nil {
			return err
		}
	}
	return os.MkdirAll(f.debDir(), 0o755)
}

// fetch returns the path of each package's .deb, downloading the ones
// not cached.
func (f *fetcher) fetch(ctx context.Context, pkgs []board.Package) (map[string]string, error) {
	out := map[string]string{}
	var missing []board.Package
	for _, p := range pkgs {
		path := filepath.Join(f.debDir(), p.Deb())
		if _, ok := out[p.Name]; ok {
			continue
		}
		out[p.Name] = path
		if err := checkSHA256(path, p.SHA256); err == nil {
			continue
		}
		missing = append(missing, p)
	}
	if len(missing) == 0 {
		return out, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return nil, fmt.Errorf("apt-get is needed to fetch %s (a Debian or Ubuntu build host)", missing[0].Spec())
	}
	if err := f.setup(); err != nil {
		return nil, fmt.Errorf("apt cache: %w", err)
	}
	if err := f.update(ctx, false); err != nil {
		return nil, err
	}
	// One apt-get for all of them: its start (reading the package index)
	// costs more than a small package's download.
	if err := f.download(ctx, missing); err != nil {
		// The index may be older than a pin: refresh once and retry.
		if !f.updated {
			if uerr := f.update(ctx, true); uerr != nil {
				return nil, uerr
			}
			err = f.download(ctx, missing)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// update refreshes the package index when forced or older than a day.
func (f *fetcher) update(ctx context.Context, force bool) error {
	stamp := filepath.Join(f.aptDir(), "state", "updated")
	if fi, err := os.Stat(stamp); err == nil && !force && time.Since(fi.ModTime()) < 24*time.Hour {
		return nil
	}
	f.progress.step("apt-get update (bookworm, trixie; amd64, arm64, i386)")
	cmd := exec.CommandContext(ctx, "apt-get", append(f.aptArgs(), "update")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %v\n%s", err, out)
	}
	f.updated = true
	return os.WriteFile(stamp, nil, 0o644)
}

func (f *fetcher) download(ctx context.Context, pkgs []board.Package) error {
	var specs, names []string
	for _, p := range pkgs {
		specs = append(specs, p.Spec())
		names = append(names, p.Name)
	}
	f.progress.step("apt-get download %s", strings.Join(specs, " "))
	start := time.Now()
	cmd := exec.CommandContext(ctx, "apt-get", append(append(f.aptArgs(), "download"), specs...)...)
	cmd.Dir = f.debDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("apt-get download: %v\n%s\nA pin in board/kernels.go may have left the archive: see `apt-cache policy %s` and move it", err, strings.TrimSpace(string(out)), strings.Join(names, " "))
	}
	var total int64
	for _, p := range pkgs {
		path := filepath.Join(f.debDir(), p.Deb())
		if err := checkSHA256(path, p.SHA256); err != nil {
			os.Remove(path)
			return fmt.Errorf("%s: %w", p.Spec(), err)
		}
		if fi, err := os.Stat(path); err == nil {
			total += fi.Size()
		}
	}
	f.progress.done("%d packages, %s in %s, SHA-256 as pinned", len(pkgs), mib(total), time.Since(start).Round(100*time.Millisecond))
	return nil
}

// checkSHA256 reports whether path exists with the given digest.
func checkSHA256(path, want string) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("SHA-256 %s, pinned %s", got, want)
	}
	return nil
}
