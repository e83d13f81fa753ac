package config

// System is the PID 1 duties: hostname, watchdog, clock, logs section (the boot issue). Document every option with
// its default in README.md beside this file.
type System struct{}

func (s *System) check(c *Config, line func(string) int) []string { return nil }

func (s *System) setDefaults(c *Config) {}
