package config

// Overlay is the management overlay (tsnet), access control, metrics, dnstap, identity endpoint section (the overlay issue). Document every option with
// its default in README.md beside this file.
type Overlay struct{}

func (s *Overlay) check(c *Config, line func(string) int) []string { return nil }

func (s *Overlay) setDefaults(c *Config) {}
