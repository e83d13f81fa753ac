package config

// Health is the health checks that gate announcements, and drain section (the routing issue). Document every option with
// its default in README.md beside this file.
type Health struct{}

func (s *Health) check(c *Config, line func(string) int) []string { return nil }

func (s *Health) setDefaults(c *Config) {}
