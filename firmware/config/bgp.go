package config

// BGP is the BGP speaker: local AS, router ID, peers, announced prefixes section (the routing issue). Document every option with
// its default in README.md beside this file.
type BGP struct{}

func (s *BGP) check(c *Config, line func(string) int) []string { return nil }

func (s *BGP) setDefaults(c *Config) {}
