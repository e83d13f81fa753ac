package store

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
