package config

// Secondary is the secondary service: primaries, TSIG keys, catalogs, outbound transfers and NOTIFY section (the secondary-service issue). Document every option with
// its default in README.md beside this file.
type Secondary struct{}

func (s *Secondary) check(c *Config, line func(string) int) []string { return nil }

func (s *Secondary) setDefaults(c *Config) {}
