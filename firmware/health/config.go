package health

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/bgp"
	"github.com/shoestring-dns/shoestring/firmware/config"
)

// Defaults for zero-valued Config fields, the config document's (package
// config owns them): a node that stops answering is withdrawn
// Fall×Interval+Timeout = 750 ms later at worst, and needs a second of
// good answers to come back.
const (
	DefaultInterval  = config.DefaultHealthInterval
	DefaultTimeout   = config.DefaultHealthTimeout
	DefaultRise      = config.DefaultRise
	DefaultFall      = config.DefaultFall
	DefaultDrainWait = config.DefaultDrainWait
	DefaultLinger    = config.DefaultDrainLinger
)

// Query is the question a check asks.
type Query struct {
	Name  string // fully qualified
	Type  uint16
	Class uint16 // dns.ClassINET (default) or dns.ClassCHAOS
}

// livenessQuery asks the server who it is; any server answers it, so it
// proves only that the server answers at all.
func livenessQuery() Query {
	return Query{Name: "id.server.", Type: dns.TypeTXT, Class: dns.ClassCHAOS}
}

func (q Query) String() string {
	return fmt.Sprintf("%s %s %s", q.Name, dns.ClassToString[q.Class], dns.TypeToString[q.Type])
}

// canary reports whether a reply must carry authoritative data: true for
// the IN class, where the node serves zones.
func (q Query) canary() bool { return q.Class == dns.ClassINET }

// Prefix is one announced prefix and how it is checked.
type Prefix struct {
	// Route is announced while the prefix is healthy.
	Route bgp.Route
	// Targets are the service addresses (with the DNS port) inside the
	// prefix; each is queried every round.
	Targets []netip.AddrPort
	// Query is the canary; without a Name the check asks id.server CH
	// TXT, which proves only that the server answers.
	Query Query
}

// ProbeFunc asks one target one question and returns nil for a correct
// answer. Tests replace the DNS probe with their own to drive the state
// machine precisely.
type ProbeFunc func(ctx context.Context, target netip.AddrPort, q Query) error

// Config describes the monitor.
type Config struct {
	Interval, Timeout time.Duration
	Rise, Fall        int
	// DrainWait is how long a draining prefix stays announced with
	// GRACEFUL_SHUTDOWN before it is withdrawn; Linger how long Stop keeps
	// the node answering after the withdrawal.
	DrainWait, Linger time.Duration
	Prefixes          []Prefix
	// Liveness are addresses (the DNS server's own) asked id.server CH
	// TXT every round when there are no prefixes to check, so that Alive
	// can tell whether the server answers at all.
	Liveness []netip.AddrPort
	// NSID, if set, must be the NSID of every reply: proof that this node
	// answered.
	NSID string
	// Expired returns the zones served past their SOA expire; any makes
	// every prefix fail. Nil: no zone check.
	Expired func() []string
	// Drained prefixes start in maintenance, withdrawn until restored
	// (an operator's drain outlives a restart).
	Drained []netip.Prefix
	// Probe replaces the DNS query (tests).
	Probe ProbeFunc
}

func (cfg Config) normalize() (Config, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = min(DefaultTimeout, cfg.Interval)
	}
	if cfg.Timeout > cfg.Interval {
		return cfg, fmt.Errorf("health: timeout %v longer than interval %v", cfg.Timeout, cfg.Interval)
	}
	if cfg.Rise <= 0 {
		cfg.Rise = DefaultRise
	}
	if cfg.Fall <= 0 {
		cfg.Fall = DefaultFall
	}
	if cfg.DrainWait <= 0 {
		cfg.DrainWait = DefaultDrainWait
	}
	if cfg.Linger < 0 {
		return cfg, errors.New("health: negative linger")
	}
	cfg.Prefixes = append([]Prefix(nil), cfg.Prefixes...)
	seen := map[netip.Prefix]bool{}
	for i, p := range cfg.Prefixes {
		pfx := p.Route.Prefix.Masked()
		if !pfx.IsValid() {
			return cfg, fmt.Errorf("health: prefix %d invalid", i)
		}
		if seen[pfx] {
			return cfg, fmt.Errorf("health: prefix %v listed twice", pfx)
		}
		seen[pfx] = true
		if len(p.Targets) == 0 {
			return cfg, fmt.Errorf("health: prefix %v has no address to check", pfx)
		}
		if p.Query.Name == "" {
			cfg.Prefixes[i].Query = livenessQuery()
		} else if p.Query.Class == 0 {
			cfg.Prefixes[i].Query.Class = dns.ClassINET
		}
		cfg.Prefixes[i].Query.Name = dns.Fqdn(cfg.Prefixes[i].Query.Name)
	}
	return cfg, nil
}
