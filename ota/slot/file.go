package slot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteAtomic replaces a file so that a power cut leaves the old or the
// new contents, never a mix: write a temporary file beside it, fsync it,
// rename it over the old one, fsync the directory (the rename is only
// durable once the directory is). Used for the state file (ext4) and
// the flag files, and by the update agent for its own state; on FAT, files whose size does not change are better
// rewritten in place (writeInPlace).
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// writeInPlace rewrites a file of exactly len(data) bytes over its own
// blocks and fsyncs it. On the FAT boot partition this is the crash-safe
// way to change a small file whose size stays the same: neither the
// directory entry nor the FAT changes (FAT has no journal, and a rename
// there is several unordered sector writes), only the file's first
// sectors, which a disk writes whole. It is also the only way GRUB itself
// writes grubenv (save_env writes the block list it read the file from).
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if st.Size() != int64(len(data)) {
		f.Close()
		return fmt.Errorf("%s is %d bytes, want %d: not rewriting it in place", path, st.Size(), len(data))
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeSameSize rewrites a file in place when its size is unchanged, and
// replaces it atomically otherwise.
func writeSameSize(path string, data []byte) error {
	if st, err := os.Stat(path); err == nil && st.Size() == int64(len(data)) {
		return writeInPlace(path, data)
	}
	return WriteAtomic(path, data, 0o644)
}

// removeSync removes a file (absent is fine) and makes that durable.
func removeSync(path string) error {
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
