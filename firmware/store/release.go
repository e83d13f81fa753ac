package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// ReleaseMemory drops the store's file pages from this process's resident
// set. bbolt reads through a shared read-only mmap, so loading every zone
// at boot leaves the whole file mapped in and counted as our RSS, although
// the data now lives in snapshots. MADV_DONTNEED only unmaps the pages:
// they stay in the page cache and are faulted back in on the next read, so
// it is safe at any time outside a read transaction's use of the pages.
func (s *Store) ReleaseMemory() error {
	info := s.db.Info()
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return err
	}
	size := int(fi.Size())
	if info.Data == 0 || size == 0 {
		return nil
	}
	// The address comes from bbolt as a uintptr; pass it to the kernel as
	// one rather than forge a Go pointer to memory Go does not own.
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, info.Data, uintptr(size), unix.MADV_DONTNEED); e != 0 {
		return e
	}
	return nil
}
