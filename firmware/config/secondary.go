package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Secondary is the secondary service: zones transferred from primaries,
// TSIG keys, catalog zones, limits on transfers, and the outbound side
// (transfers and NOTIFY to downstream servers, a produced catalog). Every
// option and its default is documented in README.md beside this file.
type Secondary struct {
	Keys      []TSIGKey       `yaml:"keys"`
	Templates []XfrTemplate   `yaml:"templates"`
	Zones     []SecondaryZone `yaml:"zones"`
	Catalogs  []CatalogZone   `yaml:"catalogs"`
	Limits    TransferLimits  `yaml:"limits"`
	Timers    RefreshTimers   `yaml:"timers"`
	Outbound  Outbound        `yaml:"outbound"`
}

// TSIGKey is a shared secret (RFC 8945), referred to by name elsewhere.
type TSIGKey struct {
	Name      string `yaml:"name"`
	Algorithm string `yaml:"algorithm"`
	Secret    string `yaml:"secret"`
}

// Remote is a primary to transfer from or a downstream to notify. In YAML
// it is either a mapping or the short form "ADDR[:PORT][@KEY]" (ADDR an IP
// address or a tailnet name).
type Remote struct {
	Address Endpoint `yaml:"address"`
	Key     string   `yaml:"key,omitempty"`
	// Source is the local address to send from; unset lets the kernel
	// choose. It only applies to remotes dialled directly (not over the
	// tailnet).
	Source IPAddr `yaml:"source,omitempty"`
}

// Endpoint is where a remote server is reached: an IP address, or a host
// name — a tailnet name such as "primary" or "primary.example.ts.net",
// resolved and dialled through the overlay, since a box has no other
// resolver — and a port, 53 unless given. Exactly one of Addr and Host is
// set. It is parsed once, when the config (or an API request) is read.
type Endpoint struct {
	Addr netip.Addr
	Host string
	Port uint16
}

// String is "ADDR:PORT", "[V6]:PORT" or "NAME:PORT": what a dialler takes.
func (e Endpoint) String() string {
	if e.Host != "" {
		return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
	}
	return netip.AddrPortFrom(e.Addr, e.Port).String()
}

// AddrPort is the address and port; invalid for an endpoint named by host.
func (e Endpoint) AddrPort() netip.AddrPort {
	if e.Host != "" || !e.Addr.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(e.Addr, e.Port)
}

// IsZero reports an endpoint never set.
func (e Endpoint) IsZero() bool { return e.Host == "" && !e.Addr.IsValid() }

// hostText is the address or name as written, to find its line.
func (e Endpoint) hostText() string {
	if e.Host != "" {
		return e.Host
	}
	return e.Addr.String()
}

// UnmarshalYAML reads an endpoint with ParseEndpoint.
func (e *Endpoint) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseEndpoint(s)
	if err != nil {
		return lineErr(n, "%v", err)
	}
	*e = v
	return nil
}

// MarshalYAML writes the endpoint the way it is read.
func (e Endpoint) MarshalYAML() (any, error) { return e.String(), nil }

// XfrTemplate names a list of primaries, for zones, catalogs and catalog
// groups to share.
type XfrTemplate struct {
	Name      string   `yaml:"name"`
	Primaries []Remote `yaml:"primaries"`
}

// SecondaryZone is one zone transferred from its primaries.
type SecondaryZone struct {
	Origin    string   `yaml:"origin"`
	Primaries []Remote `yaml:"primaries"`
	Template  string   `yaml:"template"`
}

// CatalogZone is a catalog (RFC 9432) consumed: itself transferred like a
// secondary zone, its members become secondary zones.
type CatalogZone struct {
	Origin    string   `yaml:"origin"`
	Primaries []Remote `yaml:"primaries"`
	Template  string   `yaml:"template"`
	// MemberTemplate gives the primaries of members with no mapped group;
	// empty means the catalog's own primaries.
	MemberTemplate string `yaml:"member_template"`
	// Groups maps a member's RFC 9432 group property to a template.
	Groups map[string]string `yaml:"groups"`
}

// TransferLimits bound incoming transfers.
type TransferLimits struct {
	MaxRecords  int      `yaml:"max_records"`
	MaxBytes    int64    `yaml:"max_bytes"`
	Timeout     Duration `yaml:"timeout"`
	IdleTimeout Duration `yaml:"idle_timeout"`
	Concurrent  int      `yaml:"concurrent"`
	// MemoryTarget is the Go heap's soft limit while a big zone (over
	// 100,000 records) is applied; -1 leaves the GC alone.
	MemoryTarget int64 `yaml:"memory_target"`
}

// RefreshTimers clamp the SOA refresh, retry and expire values of
// secondary zones.
type RefreshTimers struct {
	RefreshMin Duration `yaml:"refresh_min"`
	RefreshMax Duration `yaml:"refresh_max"`
	RetryMin   Duration `yaml:"retry_min"`
	RetryMax   Duration `yaml:"retry_max"`
	ExpireMin  Duration `yaml:"expire_min"`
}

// Outbound is what this node gives to downstream servers.
type Outbound struct {
	Allow  []AllowRule `yaml:"allow"`
	Notify []Remote    `yaml:"notify"`
	// Catalog, when set, is the origin of a catalog zone this node
	// produces listing the zones it is primary for (added through the
	// API or from files).
	Catalog    string `yaml:"catalog"`
	Concurrent int    `yaml:"concurrent"`
}

// AllowRule allows AXFR/IXFR to clients from some prefixes, signed with
// a key, or both.
type AllowRule struct {
	From []string `yaml:"from"`
	Key  string   `yaml:"key"`
}

// Defaults of the secondary section.
const (
	DefaultMaxRecords       = 2_000_000
	DefaultMaxBytes         = 256 << 20
	DefaultTransferTimeout  = 15 * time.Minute
	DefaultTransferIdle     = 10 * time.Second
	DefaultTransfersAtOnce  = 4
	DefaultRefreshMin       = 2 * time.Second
	DefaultRefreshMax       = 24 * time.Hour
	DefaultRetryMin         = 1 * time.Second
	DefaultRetryMax         = time.Hour
	DefaultExpireMin        = 3 * time.Second
	DefaultOutboundAtOnce   = 4
	DefaultMemoryTarget     = 384 << 20
	tsigAlgorithmsSupported = "hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512"
)

// UnmarshalYAML takes a Remote as a mapping or as "ADDR[:PORT][@KEY]".
func (r *Remote) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		rem, err := ParseRemote(s)
		if err != nil {
			return lineErr(n, "%v", err)
		}
		*r = rem
		return nil
	}
	type plain Remote
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	if p.Address.IsZero() {
		return lineErr(n, "address is required")
	}
	*r = Remote(p)
	return nil
}

// ParseRemote reads the short form "ADDR[:PORT][@KEY]" (dev mode's flags
// and the API use it too); ADDR is an IP address or a tailnet name.
func ParseRemote(s string) (Remote, error) {
	addr, key, _ := strings.Cut(s, "@")
	e, err := ParseEndpoint(addr)
	if err != nil {
		return Remote{}, err
	}
	return Remote{Address: e, Key: key}, nil
}

// ParseEndpoint reads "ADDR", "ADDR:PORT", "[V6]:PORT", "NAME" or
// "NAME:PORT"; the port is 53 unless given. A NAME is a host name (on a
// box, a tailnet name: MagicDNS short names and full names both work).
func ParseEndpoint(s string) (Endpoint, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return Endpoint{}, fmt.Errorf("%q: bad port", s)
		}
		return Endpoint{Addr: ap.Addr().Unmap(), Port: ap.Port()}, nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return Endpoint{Addr: a.Unmap(), Port: 53}, nil
	}
	host, port := s, "53"
	if strings.Contains(s, ":") {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return Endpoint{}, fmt.Errorf("%q is not ADDR, NAME, ADDR:PORT or NAME:PORT", s)
		}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return Endpoint{}, fmt.Errorf("%q: bad port", s)
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return Endpoint{Addr: a.Unmap(), Port: uint16(p)}, nil
	}
	if !isHostName(host) {
		return Endpoint{}, fmt.Errorf("%q: %q is neither an IP address nor a host name", s, host)
	}
	return Endpoint{Host: strings.ToLower(strings.TrimSuffix(host, ".")), Port: uint16(p)}, nil
}

// isHostName accepts letters, digits, hyphens and dots in labels of 1 to
// 63 characters, and refuses what only looks like a mistyped address (a
// last label of digits, as in "192.0.2").
func isHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}

// ParseTSIGKey reads dev mode's "NAME=ALG:BASE64SECRET".
func ParseTSIGKey(s string) (TSIGKey, error) {
	name, rest, ok := strings.Cut(s, "=")
	alg, secret, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || name == "" {
		return TSIGKey{}, fmt.Errorf("%q: want KEYNAME=ALGORITHM:BASE64SECRET", s)
	}
	k := TSIGKey{Name: name, Algorithm: alg, Secret: secret}
	if msg := k.problem(); msg != "" {
		return TSIGKey{}, fmt.Errorf("%s", msg)
	}
	return k, nil
}

func (k TSIGKey) problem() string {
	switch {
	case k.Name == "":
		return "a key needs a name"
	case !strings.Contains(", "+tsigAlgorithmsSupported+", ", ", "+strings.TrimSuffix(strings.ToLower(k.Algorithm), ".")+", "):
		return fmt.Sprintf("key %s: algorithm %q is not one of %s", k.Name, k.Algorithm, tsigAlgorithmsSupported)
	}
	if b, err := base64.StdEncoding.DecodeString(k.Secret); err != nil || len(b) == 0 {
		return fmt.Sprintf("key %s: secret is not base64 (generate one with `tsig-keygen` or `keymgr -t`)", k.Name)
	}
	return ""
}

// canonical lower-cases and qualifies a zone name for comparisons.
func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

func (s *Secondary) check(c *Config, line func(string) int) []string {
	var errs []string
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("line %d: secondary: ", line(key))+fmt.Sprintf(format, args...))
	}
	keys := map[string]bool{}
	for _, k := range s.Keys {
		if msg := k.problem(); msg != "" {
			add(k.Name, "%s", msg)
		}
		if keys[canonical(k.Name)] {
			add(last(k.Name), "key %s defined twice", k.Name)
		}
		keys[canonical(k.Name)] = true
	}
	checkRemotes := func(where string, rs []Remote) {
		for _, r := range rs {
			if r.Key != "" && !keys[canonical(r.Key)] {
				add(r.Address.hostText(), "%s: key %q is not defined in secondary.keys", where, r.Key)
			}
		}
	}
	templates := map[string]bool{}
	for _, t := range s.Templates {
		if t.Name == "" || templates[t.Name] {
			k := last(t.Name)
			if t.Name == "" {
				k = "templates"
			}
			add(k, "templates need unique names (%q)", t.Name)
		}
		templates[t.Name] = true
		if len(t.Primaries) == 0 {
			add(t.Name, "template %s has no primaries", t.Name)
		}
		checkRemotes("template "+t.Name, t.Primaries)
	}
	seen := map[string]bool{}
	for _, z := range c.Zones {
		seen[canonical(z.Origin)] = true
	}
	origin := func(kind, o string, prim []Remote, tmpl string) {
		if o == "" {
			add(kind, "%s without an origin", kind)
			return
		}
		if seen[canonical(o)] {
			add(last(o), "zone %s is listed twice (zones, secondary.zones, secondary.catalogs)", canonical(o))
		}
		seen[canonical(o)] = true
		switch {
		case len(prim) == 0 && tmpl == "":
			add(o, "%s %s: needs primaries or a template", kind, o)
		case len(prim) > 0 && tmpl != "":
			add(o, "%s %s: give primaries or a template, not both", kind, o)
		case tmpl != "" && !templates[tmpl]:
			add(o, "%s %s: template %q is not defined", kind, o, tmpl)
		}
		checkRemotes(kind+" "+o, prim)
	}
	for _, z := range s.Zones {
		origin("zone", z.Origin, z.Primaries, z.Template)
	}
	for _, cz := range s.Catalogs {
		origin("catalog", cz.Origin, cz.Primaries, cz.Template)
		if cz.MemberTemplate != "" && !templates[cz.MemberTemplate] {
			add(cz.MemberTemplate, "catalog %s: member_template %q is not defined", cz.Origin, cz.MemberTemplate)
		}
		for g, t := range cz.Groups {
			if !templates[t] {
				add(g, "catalog %s: group %q maps to template %q, which is not defined", cz.Origin, g, t)
			}
		}
	}
	l := s.Limits
	if l.MaxRecords < 0 || l.MaxBytes < 0 || l.Concurrent < 0 || s.Outbound.Concurrent < 0 || l.MemoryTarget < -1 {
		add("limits", "limits must not be negative")
	}
	for _, r := range s.Outbound.Allow {
		if len(r.From) == 0 && r.Key == "" {
			add("allow", "outbound.allow: a rule needs from, key or both (to allow everyone, say from: [0.0.0.0/0, \"::/0\"])")
		}
		for _, f := range r.From {
			if _, err := ParsePrefixOrAddr(f); err != nil {
				add(f, "outbound.allow: %q is not an address or prefix", f)
			}
		}
		if r.Key != "" && !keys[canonical(r.Key)] {
			add(r.Key, "outbound.allow: key %q is not defined in secondary.keys", r.Key)
		}
	}
	checkRemotes("outbound.notify", s.Outbound.Notify)
	if o := s.Outbound.Catalog; o != "" && seen[canonical(o)] {
		add(o, "outbound.catalog %s is also configured as another zone", o)
	}
	return errs
}

func (s *Secondary) setDefaults(c *Config) {
	l := &s.Limits
	if l.MaxRecords == 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.Timeout == 0 {
		l.Timeout = Duration(DefaultTransferTimeout)
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = Duration(DefaultTransferIdle)
	}
	if l.Concurrent == 0 {
		l.Concurrent = DefaultTransfersAtOnce
	}
	if l.MemoryTarget == 0 {
		l.MemoryTarget = DefaultMemoryTarget
	}
	t := &s.Timers
	for _, d := range []struct {
		v   *Duration
		def time.Duration
	}{{&t.RefreshMin, DefaultRefreshMin}, {&t.RefreshMax, DefaultRefreshMax}, {&t.RetryMin, DefaultRetryMin},
		{&t.RetryMax, DefaultRetryMax}, {&t.ExpireMin, DefaultExpireMin}} {
		if *d.v == 0 {
			*d.v = Duration(d.def)
		}
	}
	if s.Outbound.Concurrent == 0 {
		s.Outbound.Concurrent = DefaultOutboundAtOnce
	}
}
