// Package config is the node config document: one declarative YAML file
// that describes a node. Decoding is strict — unknown keys and bad values
// are errors that name their line — and a document is checked whole before
// any of it is applied. README.md beside this file is the reference with
// every option and its default; keep the two in step.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole node config document.
type Config struct {
	Node       Node       `yaml:"node"`
	DataDir    string     `yaml:"data_dir"`
	DNS        DNS        `yaml:"dns"`
	Management Management `yaml:"management"`
	Zones      []Zone     `yaml:"zones"`
	// Each section below lives in its own file with its own check and
	// defaults: secondary.go, network.go, bgp.go, health.go, system.go,
	// overlay.go, ota.go, tenants.go, catchment.go.
	Secondary Secondary `yaml:"secondary"`
	Network   Network   `yaml:"network"`
	BGP       BGP       `yaml:"bgp"`
	Health    Health    `yaml:"health"`
	System    System    `yaml:"system"`
	Overlay   Overlay   `yaml:"overlay"`
	OTA       OTA       `yaml:"ota"`
	Tenants   Tenants   `yaml:"tenants"`
	Catchment Catchment `yaml:"catchment"`

	// zero holds the duration options written as 0 where 0 means
	// something (zero.go), so that defaults leave them alone.
	zero map[string]bool
}

// section is what every config section file provides.
type section interface {
	// check returns one message per problem; line finds the line of a
	// key or value for messages about values decoded without their node.
	check(c *Config, line func(string) int) []string
	setDefaults(c *Config)
}

// keyedSection is a section with the top-level key its lines are found
// under: one list, so a section cannot be added without its key.
type keyedSection struct {
	key string
	section
}

func (c *Config) sections() []keyedSection {
	return []keyedSection{
		{"secondary", &c.Secondary}, {"network", &c.Network}, {"bgp", &c.BGP}, {"health", &c.Health},
		{"system", &c.System}, {"overlay", &c.Overlay}, {"ota", &c.OTA}, {"dns", &c.DNS.DNSAbuse},
		{"tenants", &c.Tenants}, {"catchment", &c.Catchment},
	}
}

// Node says who this node is.
type Node struct {
	// Name identifies the node (CHAOS id.server, default NSID); default:
	// the host name.
	Name string `yaml:"name"`
	// Location is free text shown on the status page ("AMS-IX rack 4").
	Location string `yaml:"location"`
}

// DNS configures the authoritative server.
type DNS struct {
	Listen         []HostPort `yaml:"listen"`
	NSID           string     `yaml:"nsid"`
	Version        string     `yaml:"version"`
	MaxUDPSize     int        `yaml:"max_udp_size"`
	UDPWorkers     int        `yaml:"udp_workers"`
	TCPIdleTimeout Duration   `yaml:"tcp_idle_timeout"`
	TCPMaxConns    int        `yaml:"tcp_max_conns"`
	// MemoryLimit is the node's memory budget in bytes: a zone version
	// or transfer that would take the node past it is refused. 0: three
	// quarters of the box's RAM; -1: none.
	MemoryLimit int64 `yaml:"memory_limit"`
	// Cookies, RRL and per-client limits (dnsabuse.go).
	DNSAbuse `yaml:",inline"`
}

// Management configures the management HTTP API and status page.
type Management struct {
	Listen HostPort `yaml:"listen"`
}

// Zone is a zone served from a master file on the node.
type Zone struct {
	Origin string `yaml:"origin"`
	File   string `yaml:"file"`
}

// Defaults.
const (
	DefaultDataDir        = "/perm/shoestring"
	DefaultDNSListen      = "0.0.0.0:53"
	DefaultManagement     = "127.0.0.1:8053"
	DefaultMaxUDPSize     = 1232
	DefaultTCPIdleTimeout = 10 * time.Second
	DefaultTCPMaxConns    = 256
	// MinMemoryLimit is the smallest dns.memory_limit: less would refuse
	// every zone of a node that has just started.
	MinMemoryLimit = 32 << 20
)

// HostPort is an address with a port ("192.0.2.1:53", "[2001:db8::1]:53").
type HostPort string

// UnmarshalYAML checks the address when it is read, so the error has the
// line it came from.
func (h *HostPort) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return lineErr(n, "%q is not host:port: %v", s, err)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return lineErr(n, "%q: host must be an IP address", s)
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return lineErr(n, "%q: bad port", s)
	}
	*h = HostPort(s)
	return nil
}

// Duration is a time.Duration written as "10s", "1m30s".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return lineErr(n, "%q is not a duration like 10s or 1m", s)
	}
	*d = Duration(v)
	return nil
}

func lineErr(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("line %d: %s", n.Line, fmt.Sprintf(format, args...))
}

// Load reads and checks a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a config document strictly and fills in defaults.
func Parse(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, errEOF) || err.Error() == "EOF" {
			return nil, errors.New("empty config document")
		}
		return nil, cleanYAMLError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errors.New("more than one YAML document; a config is one document")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, cleanYAMLError(err)
	}
	if err := c.check(b, &doc); err != nil {
		return nil, err
	}
	c.SetDefaults()
	return &c, nil
}

var errEOF = errors.New("EOF")

// cleanYAMLError turns yaml.v3's "yaml: unmarshal errors:\n  line 3: ..."
// into one line per problem.
func cleanYAMLError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

// check validates values that need the whole document.
func (c *Config) check(raw []byte, doc *yaml.Node) error {
	errs := c.zeroDurations(doc)
	line := lineFinder(raw, doc, "")
	if c.DNS.MaxUDPSize != 0 && (c.DNS.MaxUDPSize < 512 || c.DNS.MaxUDPSize > 65535) {
		errs = append(errs, fmt.Sprintf("line %d: dns.max_udp_size %d: must be 512..65535", line("max_udp_size"), c.DNS.MaxUDPSize))
	}
	if c.DNS.MemoryLimit < -1 || (c.DNS.MemoryLimit > 0 && c.DNS.MemoryLimit < MinMemoryLimit) {
		errs = append(errs, fmt.Sprintf("line %d: dns.memory_limit %d: must be -1 (none), 0 (from the RAM) or at least %d (%d MiB)", line("memory_limit"), c.DNS.MemoryLimit, MinMemoryLimit, MinMemoryLimit>>20))
	}
	if c.DNS.UDPWorkers < 0 || c.DNS.TCPMaxConns < 0 {
		errs = append(errs, "dns.udp_workers and dns.tcp_max_conns must not be negative")
	}
	seen := map[string]bool{}
	zline := lineFinder(raw, doc, "zones")
	for i, z := range c.Zones {
		if z.Origin == "" {
			errs = append(errs, fmt.Sprintf("line %d: zones[%d]: origin is required", itemLine(doc, "zones", i), i))
			continue
		}
		o := strings.ToLower(strings.TrimSuffix(z.Origin, ".")) + "."
		if seen[o] {
			errs = append(errs, fmt.Sprintf("line %d: zone %s listed twice", zline(last(z.Origin)), o))
		}
		seen[o] = true
		if z.File == "" {
			errs = append(errs, fmt.Sprintf("line %d: zone %s: file is required", zline(z.Origin), o))
		}
	}
	for _, sec := range c.sections() {
		errs = append(errs, sec.check(c, lineFinder(raw, doc, sec.key))...)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// lineFinder returns the line of a key or value for messages about values
// that were decoded without their node: the first line of the section
// (top-level key) that mentions s as a whole word — "192.0.2.5" is not
// found in "192.0.2.53", "rise" not in "enterprise" — or, for
// last(s), the last such line (the second of two entries listed twice).
// Not found in the section, the whole document is searched; 0 means not
// found at all.
func lineFinder(raw []byte, doc *yaml.Node, section string) func(string) int {
	lines := strings.Split(string(raw), "\n")
	from, to := 0, len(lines)
	if section != "" && len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
		m := doc.Content[0].Content
		for i := 0; i+1 < len(m); i += 2 {
			if m[i].Value != section {
				continue
			}
			from = m[i].Line - 1
			if i+2 < len(m) {
				to = m[i+2].Line - 1
			}
		}
	}
	find := func(s string, a, b int, lastOne bool) int {
		found := 0
		for i := a; i < b && i < len(lines); i++ {
			if mentions(lines[i], s) {
				found = i + 1
				if !lastOne {
					break
				}
			}
		}
		return found
	}
	return func(s string) int {
		s, lastOne := strings.CutPrefix(s, lastMarker)
		if n := find(s, from, to, lastOne); n > 0 {
			return n
		}
		return find(s, 0, len(lines), lastOne)
	}
}

// itemLine is the line of element i of a top-level list.
func itemLine(doc *yaml.Node, key string, i int) int {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return 0
	}
	m := doc.Content[0].Content
	for j := 0; j+1 < len(m); j += 2 {
		if m[j].Value == key && m[j+1].Kind == yaml.SequenceNode && i < len(m[j+1].Content) {
			return m[j+1].Content[i].Line
		}
	}
	return 0
}

// lastMarker makes a lineFinder look for the last mention.
const lastMarker = "\x00last:"

// last asks a lineFinder for the last mention of s in its section.
func last(s string) string { return lastMarker + s }

// mentions reports whether s is in line as a whole word.
func mentions(line, s string) bool {
	if s == "" {
		return false
	}
	for off := 0; ; {
		i := strings.Index(line[off:], s)
		if i < 0 {
			return false
		}
		i += off
		before, after := byte(' '), byte(' ')
		if i > 0 {
			before = line[i-1]
		}
		if j := i + len(s); j < len(line) {
			after = line[j]
		}
		okBefore := !wordByte(s[0]) || !wordByte(before)
		okAfter := !wordByte(s[len(s)-1]) || !wordByte(after)
		if okBefore && okAfter {
			return true
		}
		off = i + 1
	}
}

func wordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-'
}

// SetDefaults fills in every option left out.
func (c *Config) SetDefaults() {
	if c.Node.Name == "" {
		c.Node.Name, _ = os.Hostname()
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if len(c.DNS.Listen) == 0 {
		c.DNS.Listen = []HostPort{DefaultDNSListen}
	}
	if c.DNS.NSID == "" {
		c.DNS.NSID = c.Node.Name
	}
	if c.DNS.MaxUDPSize == 0 {
		c.DNS.MaxUDPSize = DefaultMaxUDPSize
	}
	if c.unset("dns.tcp_idle_timeout", c.DNS.TCPIdleTimeout) {
		c.DNS.TCPIdleTimeout = Duration(DefaultTCPIdleTimeout)
	}
	if c.DNS.TCPMaxConns == 0 {
		c.DNS.TCPMaxConns = DefaultTCPMaxConns
	}
	if c.Management.Listen == "" {
		c.Management.Listen = DefaultManagement
	}
	for _, sec := range c.sections() {
		sec.setDefaults(c)
	}
}

// Marshal writes the config back as YAML (kept in the store as the last
// config that worked).
func (c *Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }

// MarshalYAML writes a Duration the way it is read.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }
