package tenant

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

// state is what the host keeps across its restarts in DIR/tenants.json:
// the tenants added through the API (the config file's are in the config
// file) and the uid each tenant was given.
type state struct {
	Added []config.Tenant `json:"added"`
	UIDs  map[string]int  `json:"uids"`
	path  string
}

func loadState(dir string) (*state, error) {
	s := &state{UIDs: map[string]int{}, path: filepath.Join(dir, "tenants.json")}
	b, err := os.ReadFile(s.path)
	if os.IsNotExist(err) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	if s.UIDs == nil {
		s.UIDs = map[string]int{}
	}
	return s, nil
}

// save writes the state whole or not at all (a temporary file renamed
// over the old one).
func (s *state) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
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
	return os.Rename(tmp, s.path)
}

// uid returns name's uid, giving it the lowest free one from base on.
func (s *state) uid(name string, base int) int {
	if u, ok := s.UIDs[name]; ok {
		return u
	}
	used := map[int]bool{}
	for _, u := range s.UIDs {
		used[u] = true
	}
	u := base
	for used[u] {
		u++
	}
	s.UIDs[name] = u
	return u
}
