package config

import (
	"encoding/hex"
	"fmt"
	"time"
)

// DNSAbuse is the abuse resistance of the DNS server: DNS cookies (RFC
// 7873, server cookies per RFC 9018), response rate limiting and the
// per-client TCP limit. Its keys sit directly in the dns: section.
type DNSAbuse struct {
	// Cookies answers DNS cookies (default true).
	Cookies *bool `yaml:"cookies,omitempty" json:"cookies,omitempty"`
	// CookieSecrets are 128-bit secrets in hex; the first mints server
	// cookies, the others only verify them (rollover). Every node of an
	// anycast set must have the same list. None: a random secret per
	// process (a warning is logged).
	CookieSecrets []string `yaml:"cookie_secrets,omitempty" json:"cookie_secrets,omitempty"`
	// RequireCookieUDP answers BADCOOKIE to UDP queries that carry a
	// client cookie but no valid server cookie.
	RequireCookieUDP bool `yaml:"require_cookie_udp,omitempty" json:"require_cookie_udp,omitempty"`
	// TCPMaxConnsPerClient bounds TCP connections from one client prefix
	// (rrl.ipv4_prefix / rrl.ipv6_prefix), default 16.
	TCPMaxConnsPerClient int `yaml:"tcp_max_conns_per_client,omitempty" json:"tcp_max_conns_per_client,omitempty"`
	RRL                  RRL `yaml:"rrl,omitempty" json:"rrl,omitempty"`
}

// RRL is response rate limiting (off unless Enabled).
type RRL struct {
	Enabled            bool       `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	ResponsesPerSecond int        `yaml:"responses_per_second,omitempty" json:"responses_per_second,omitempty"`
	NXDomainsPerSecond int        `yaml:"nxdomains_per_second,omitempty" json:"nxdomains_per_second,omitempty"`
	NoDataPerSecond    int        `yaml:"nodata_per_second,omitempty" json:"nodata_per_second,omitempty"`
	ReferralsPerSecond int        `yaml:"referrals_per_second,omitempty" json:"referrals_per_second,omitempty"`
	ErrorsPerSecond    int        `yaml:"errors_per_second,omitempty" json:"errors_per_second,omitempty"`
	Window             Duration   `yaml:"window,omitempty" json:"window,omitempty"`
	Slip               *int       `yaml:"slip,omitempty" json:"slip,omitempty"`
	IPv4Prefix         int        `yaml:"ipv4_prefix,omitempty" json:"ipv4_prefix,omitempty"`
	IPv6Prefix         int        `yaml:"ipv6_prefix,omitempty" json:"ipv6_prefix,omitempty"`
	Exempt             []IPPrefix `yaml:"exempt,omitempty" json:"exempt,omitempty"`
	TableSize          int        `yaml:"table_size,omitempty" json:"table_size,omitempty"`
}

// Defaults of the abuse settings.
const (
	DefaultTCPMaxConnsPerClient = 16
	DefaultRRLResponses         = 20
	DefaultRRLWindow            = 15 * time.Second
	DefaultRRLSlip              = 2
	DefaultRRLIPv4Prefix        = 24
	DefaultRRLIPv6Prefix        = 56
	DefaultRRLTableSize         = 65536
)

// CookiesOn reports whether DNS cookies are answered.
func (a *DNSAbuse) CookiesOn() bool { return a.Cookies == nil || *a.Cookies }

// Secrets returns the cookie secrets as bytes (checked by Parse).
func (a *DNSAbuse) Secrets() [][16]byte {
	var out [][16]byte
	for _, s := range a.CookieSecrets {
		var k [16]byte
		b, err := hex.DecodeString(s)
		if err == nil && len(b) == len(k) {
			copy(k[:], b)
			out = append(out, k)
		}
	}
	return out
}

func (a *DNSAbuse) check(c *Config, line func(string) int) []string {
	var errs []string
	bad := func(key, format string, args ...any) {
		at := ""
		if n := line(key); n > 0 {
			at = fmt.Sprintf("line %d: ", n)
		}
		errs = append(errs, at+"dns."+fmt.Sprintf(format, args...))
	}
	for _, s := range a.CookieSecrets {
		if b, err := hex.DecodeString(s); err != nil || len(b) != 16 {
			bad(s, "cookie_secrets: %q is not 32 hex digits (128 bits)", s)
		}
	}
	if a.TCPMaxConnsPerClient < 0 {
		bad("tcp_max_conns_per_client", "tcp_max_conns_per_client must not be negative")
	}
	r := &a.RRL
	for _, v := range []struct {
		key string
		n   int
	}{
		{"responses_per_second", r.ResponsesPerSecond}, {"nxdomains_per_second", r.NXDomainsPerSecond},
		{"nodata_per_second", r.NoDataPerSecond}, {"referrals_per_second", r.ReferralsPerSecond},
		{"errors_per_second", r.ErrorsPerSecond}, {"table_size", r.TableSize},
	} {
		if v.n < 0 || v.n > 1<<24 {
			bad(v.key, "rrl.%s %d: must be 0..%d", v.key, v.n, 1<<24)
		}
	}
	if r.Slip != nil && (*r.Slip < 0 || *r.Slip > 10) {
		bad("slip", "rrl.slip %d: must be 0..10", *r.Slip)
	}
	if w := time.Duration(r.Window); w != 0 && (w < time.Second || w > time.Hour) {
		bad("window", "rrl.window %s: must be 1s..1h", w)
	}
	if r.IPv4Prefix < 0 || r.IPv4Prefix > 32 {
		bad("ipv4_prefix", "rrl.ipv4_prefix %d: must be 0..32", r.IPv4Prefix)
	}
	if r.IPv6Prefix < 0 || r.IPv6Prefix > 128 {
		bad("ipv6_prefix", "rrl.ipv6_prefix %d: must be 0..128", r.IPv6Prefix)
	}
	for _, p := range r.Exempt {
		if p.Default {
			bad("exempt", "rrl.exempt: write 0.0.0.0/0 or ::/0, not default")
		}
	}
	return errs
}

// Problems lists what is wrong with settings that come without a config
// file to point into (a tenant's dns settings from the API).
func (a *DNSAbuse) Problems() []string {
	return a.check(nil, func(string) int { return 0 })
}

// SetDefaults fills in the unset abuse settings.
func (a *DNSAbuse) SetDefaults() { a.setDefaults(nil) }

func (a *DNSAbuse) setDefaults(c *Config) {
	if a.TCPMaxConnsPerClient == 0 {
		a.TCPMaxConnsPerClient = DefaultTCPMaxConnsPerClient
	}
	r := &a.RRL
	if r.ResponsesPerSecond == 0 {
		r.ResponsesPerSecond = DefaultRRLResponses
	}
	if r.Window == 0 {
		r.Window = Duration(DefaultRRLWindow)
	}
	if r.Slip == nil {
		s := DefaultRRLSlip
		r.Slip = &s
	}
	if r.IPv4Prefix == 0 {
		r.IPv4Prefix = DefaultRRLIPv4Prefix
	}
	if r.IPv6Prefix == 0 {
		r.IPv6Prefix = DefaultRRLIPv6Prefix
	}
	if r.TableSize == 0 {
		r.TableSize = DefaultRRLTableSize
	}
}
