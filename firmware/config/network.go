package config

// Network is the networking: links, addresses, routes, anycast addresses on lo, sysctls, DHCP section (the routing issue). Document every option with
// its default in README.md beside this file.
type Network struct{}

func (s *Network) check(c *Config, line func(string) int) []string { return nil }

func (s *Network) setDefaults(c *Config) {}
