package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// Reopen closes and reopens the store file. bbolt reads through a shared
// mmap, so loading every zone at boot leaves the whole file resident and
// counted in this process's RSS although the data now lives in snapshots.
// Unmapping is the one safe way to let those pages go (they stay in the
// page cache and fault back in on the next read). The caller must make
// sure nothing else uses the store meanwhile.
func (s *Store) Reopen() error {
	path := s.db.Path()
	if err := s.db.Close(); err != nil {
		return err
	}
	ns, err := Open(path, s.opts)
	if err != nil {
		return err
	}
	s.db = ns.db
	return nil
}

// dropMapped drops the file's pages from this process's mappings
// (madvise MADV_DONTNEED on bbolt's shared, read-only map), so that
// reading a big zone does not leave the whole file counted in RSS at the
// peak, next to what was built from it. The mapping stays valid: a page
// read again faults back in from the page cache (the file is mapped
// shared, so nothing is lost). size is the used part of the file (tx.Size).
func (s *Store) dropMapped(size int64) {
	info := s.db.Info()
	page := int64(os.Getpagesize())
	size -= size % page
	if size <= 0 {
		return
	}
	// Best effort: an error only means the pages stay resident.
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, info.Data, uintptr(size), unix.MADV_DONTNEED)
}
