package pid1

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// provisionDir is the folder on the boot partition an operator drops a
// node's files into before the box's first boot.
const provisionDir = "provision"

// provision moves files from the boot partition's provision folder into
// /perm/config: the node config (node.yaml), the overlay auth key, zone
// files. Each is written to the data partition and synced before it is
// deleted from the boot partition, so a power cut loses nothing, and no
// secret stays on a partition any laptop can read. A receipt is left in
// provisioned.txt. It returns the names taken.
func provision(bootDev, dest string, log *slog.Logger) ([]string, error) {
	if err := os.MkdirAll(bootDir, 0o755); err != nil {
		return nil, err
	}
	if err := unix.Mount(bootDev, bootDir, "vfat", unix.MS_NOATIME|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, "flush"); err != nil {
		return nil, fmt.Errorf("mount %s: %w", bootDev, err)
	}
	defer func() {
		unix.Sync()
		if err := unix.Unmount(bootDir, 0); err != nil {
			log.Warn("unmount boot partition", "err", err)
		}
	}()
	return provisionFrom(filepath.Join(bootDir, provisionDir), dest, filepath.Join(bootDir, "provisioned.txt"))
}

// provisionFrom moves every regular file of src but README.txt to dest.
func provisionFrom(src, dest, receipt string) ([]string, error) {
	ents, err := os.ReadDir(src)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var taken []string
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || strings.EqualFold(name, "README.txt") || strings.HasPrefix(name, ".") {
			continue
		}
		if err := copySynced(filepath.Join(src, name), filepath.Join(dest, name)); err != nil {
			return taken, fmt.Errorf("provisioning %s: %w", name, err)
		}
		if err := os.Remove(filepath.Join(src, name)); err != nil {
			return taken, fmt.Errorf("provisioning %s: taken, but not removed from the boot partition: %w", name, err)
		}
		taken = append(taken, name)
	}
	if len(taken) == 0 {
		return nil, nil
	}
	sort.Strings(taken)
	r, err := os.OpenFile(receipt, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintf(r, "%s: moved to the data partition (/perm/config): %s\r\n", time.Now().UTC().Format(time.RFC3339), strings.Join(taken, ", "))
		r.Close()
	}
	return taken, nil
}

// copySynced copies src to dst through a temporary file, synced and
// renamed into place, so dst is either the old or the whole new file.
func copySynced(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".new"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
