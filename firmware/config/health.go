package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Health is what gates the BGP announcements: the checks run against each
// announced prefix (a DNS query to the node's own service addresses, zone
// freshness), their rise/fall hysteresis, and the drain before a planned
// stop. README.md beside this file documents every option with its default.
type Health struct {
	// Interval between check rounds (200ms) and Timeout of each query
	// (150ms, or Interval when that is shorter; at most Interval).
	Interval Duration `yaml:"interval,omitempty"`
	Timeout  Duration `yaml:"timeout,omitempty"`
	// Rise consecutive passing rounds announce a withdrawn prefix (5);
	// Fall consecutive failing rounds withdraw an announced one (3).
	Rise int `yaml:"rise,omitempty"`
	Fall int `yaml:"fall,omitempty"`
	// Canary is the query every prefix is checked with unless its own
	// entry in Prefixes says otherwise. Without one, the check asks
	// id.server CH TXT, which proves only that the server answers.
	Canary Canary `yaml:"canary,omitempty"`
	// Prefixes override the check of single announced prefixes.
	Prefixes []HealthPrefix `yaml:"prefixes,omitempty"`
	Drain    Drain          `yaml:"drain,omitempty"`
}

// Canary is a question the node must answer authoritatively with data.
type Canary struct {
	Name string `yaml:"name,omitempty"`
	// Type is the record type asked for (default SOA).
	Type string `yaml:"type,omitempty"`
}

// IsZero lets an unset canary be left out when the config is saved.
func (c Canary) IsZero() bool { return c == Canary{} }

// HealthPrefix is the check of one announced prefix.
type HealthPrefix struct {
	Prefix IPPrefix `yaml:"prefix"`
	Canary Canary   `yaml:"canary,omitempty"`
	// Addresses are the service addresses queried; default: the
	// network.anycast addresses inside the prefix.
	Addresses []IPAddr `yaml:"addresses,omitempty"`
}

// Drain is the planned stop: announce with GRACEFUL_SHUTDOWN (65535:0),
// wait Wait for traffic to move, withdraw, keep answering for Linger, stop.
type Drain struct {
	Wait Duration `yaml:"wait,omitempty"`
	// Linger is written even when 0: 0 means no linger, and a config
	// saved and read back must not turn it into the default.
	Linger Duration `yaml:"linger"`
}

// IsZero lets unset drain timers be left out when the config is saved.
func (d Drain) IsZero() bool { return d == Drain{} }

// Health defaults: a failing node is withdrawn within
// Fall×Interval+Timeout = 750 ms, well inside a second.
const (
	DefaultHealthInterval = 200 * time.Millisecond
	DefaultHealthTimeout  = 150 * time.Millisecond
	DefaultRise           = 5
	DefaultFall           = 3
	DefaultCanaryType     = "SOA"
	DefaultDrainWait      = 5 * time.Second
	DefaultDrainLinger    = 2 * time.Second
)

func (s *Health) check(c *Config, line func(string) int) []string {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("line %d: health: %s", line(key), fmt.Sprintf(format, args...)))
	}
	iv, to := time.Duration(s.Interval), time.Duration(s.Timeout)
	if iv != 0 && iv < 10*time.Millisecond {
		bad("interval", "interval %v: at least 10ms", iv)
	}
	if iv == 0 {
		iv = DefaultHealthInterval
	}
	if to != 0 && to > iv {
		bad("timeout", "timeout %v is longer than interval %v", to, iv)
	}
	if s.Rise < 0 || s.Fall < 0 || s.Rise > 1000 || s.Fall > 1000 {
		bad("rise", "rise and fall must be 1..1000")
	}
	checkCanary := func(cn Canary) {
		if cn.Name == "" {
			if cn.Type != "" {
				bad(cn.Type, "canary type %s without a name", cn.Type)
			}
			return
		}
		if _, ok := dns.IsDomainName(cn.Name); !ok {
			bad(cn.Name, "canary name %q is not a domain name", cn.Name)
		}
		if cn.Type != "" {
			if _, ok := dns.StringToType[strings.ToUpper(cn.Type)]; !ok {
				bad(cn.Type, "canary type %q is not a record type", cn.Type)
			}
		}
	}
	checkCanary(s.Canary)
	announced := map[string]bool{}
	for _, a := range c.BGP.Prefixes {
		announced[a.Prefix.Masked().String()] = true
	}
	seen := map[string]bool{}
	for _, hp := range s.Prefixes {
		key := hp.Prefix.String()
		if hp.Prefix.Default || !announced[hp.Prefix.Masked().String()] {
			bad(key, "prefix %s is not in bgp.prefixes", key)
			continue
		}
		if seen[key] {
			bad(last(key), "prefix %s listed twice", key)
		}
		seen[key] = true
		checkCanary(hp.Canary)
		for _, a := range hp.Addresses {
			if !hp.Prefix.Contains(a.Addr) {
				bad(a.String(), "prefix %s: address %s is outside it, so its answers say nothing about the prefix", key, a)
			}
		}
	}
	for _, a := range c.BGP.Prefixes {
		if a.Prefix.Default || !a.Prefix.IsValid() {
			continue // reported by the bgp section
		}
		addrs := c.HealthAddresses(a.Prefix)
		if len(addrs) == 0 {
			bad(a.Prefix.String(), "prefix %s covers no service address to check: put one inside it in network.anycast or health.prefixes[].addresses", a.Prefix)
		}
		for _, ad := range addrs {
			if _, ok := c.DNSPort(ad); !ok {
				bad("listen", "prefix %s: dns.listen has no socket for service address %s", a.Prefix, ad)
			}
		}
	}
	return errs
}

// HealthAddresses returns the service addresses that the checks of an
// announced prefix query.
func (c *Config) HealthAddresses(p IPPrefix) []IPAddr {
	for _, hp := range c.Health.Prefixes {
		if hp.Prefix.Masked() == p.Masked() && len(hp.Addresses) > 0 {
			return hp.Addresses
		}
	}
	return anycastIn(c, p)
}

// DNSPort returns the port the DNS server answers on at addr: that of a
// dns.listen entry for addr itself or for the wildcard of its family.
func (c *Config) DNSPort(addr IPAddr) (int, bool) {
	listen := c.DNS.Listen
	if len(listen) == 0 {
		listen = []HostPort{DefaultDNSListen}
	}
	for _, hp := range listen {
		host, port, err := net.SplitHostPort(string(hp))
		if err != nil {
			continue
		}
		p, err := strconv.Atoi(port)
		if err != nil || p == 0 {
			continue
		}
		if host == "" {
			return p, true
		}
		h, err := netip.ParseAddr(host)
		if err != nil {
			continue
		}
		h = h.Unmap()
		if h == addr.Addr || (h.IsUnspecified() && h.Is4() == addr.Is4()) {
			return p, true
		}
	}
	return 0, false
}

// HealthCanary returns the canary of an announced prefix (Name empty: none).
func (c *Config) HealthCanary(p IPPrefix) Canary {
	cn := c.Health.Canary
	for _, hp := range c.Health.Prefixes {
		if hp.Prefix.Masked() == p.Masked() && hp.Canary.Name != "" {
			cn = hp.Canary
		}
	}
	if cn.Name != "" && cn.Type == "" {
		cn.Type = DefaultCanaryType
	}
	return cn
}

func (s *Health) setDefaults(c *Config) {
	if s.Interval == 0 {
		s.Interval = Duration(DefaultHealthInterval)
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(min(DefaultHealthTimeout, time.Duration(s.Interval)))
	}
	if s.Rise == 0 {
		s.Rise = DefaultRise
	}
	if s.Fall == 0 {
		s.Fall = DefaultFall
	}
	if s.Drain.Wait == 0 {
		s.Drain.Wait = Duration(DefaultDrainWait)
	}
	if c.unset("health.drain.linger", s.Drain.Linger) {
		s.Drain.Linger = Duration(DefaultDrainLinger)
	}
}
