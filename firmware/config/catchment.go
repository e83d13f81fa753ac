package config

import "fmt"

// Catchment bounds the node's part in catchment measurements (package
// catchment): probes sent from the anycast addresses to the targets the
// fleet controller lists, and replies recorded. README.md beside this
// file documents every option with its default.
type Catchment struct {
	// Rate is the most probes the node sends per second; a request may
	// ask for less, never more.
	Rate int `yaml:"rate,omitempty"`
	// MaxTargets is the longest target list a measurement may carry; it
	// also bounds the replies kept (four per target).
	MaxTargets int `yaml:"max_targets,omitempty"`
}

// Catchment defaults.
const (
	DefaultCatchmentRate       = 100
	DefaultCatchmentMaxTargets = 10000
)

func (m *Catchment) check(c *Config, line func(string) int) []string {
	var errs []string
	if m.Rate < 0 || m.Rate > 10000 {
		errs = append(errs, fmt.Sprintf("line %d: catchment: rate %d: must be 1..10000 probes per second", line("rate"), m.Rate))
	}
	if m.MaxTargets < 0 || m.MaxTargets > 1000000 {
		errs = append(errs, fmt.Sprintf("line %d: catchment: max_targets %d: must be 1..1000000", line("max_targets"), m.MaxTargets))
	}
	return errs
}

func (m *Catchment) setDefaults(c *Config) {
	if m.Rate == 0 {
		m.Rate = DefaultCatchmentRate
	}
	if m.MaxTargets == 0 {
		m.MaxTargets = DefaultCatchmentMaxTargets
	}
}
