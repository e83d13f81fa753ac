package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Overlay is the management overlay: the tailnet the node joins (tsnet),
// where the management API, metrics, status page and zone transfers
// listen; who may do what there; and the observability outputs (metrics,
// dnstap, the public identity endpoint). README.md beside this file
// documents every option with its default.
type Overlay struct {
	// Enabled joins the tailnet. Without it management listens only on
	// management.listen (loopback), as in dev mode.
	Enabled bool `yaml:"enabled,omitempty"`
	// ControlURL is the coordination server (headscale, or Tailscale's
	// own when empty).
	ControlURL string `yaml:"control_url,omitempty"`
	// AuthKey registers the node on first start; AuthKeyFile names a file
	// holding it (first-boot provisioning writes one). Neither is needed
	// once the state directory holds the node's login.
	AuthKey     string `yaml:"auth_key,omitempty"`
	AuthKeyFile string `yaml:"auth_key_file,omitempty"`
	// Hostname is the node's name on the tailnet (default node.name).
	Hostname string `yaml:"hostname,omitempty"`
	// StateDir keeps the node's tailnet keys and login, on the data
	// partition so they survive updates (default data_dir/tailnet).
	StateDir string `yaml:"state_dir,omitempty"`
	// Tags are advertised to the control server (it decides).
	Tags []string `yaml:"tags,omitempty"`
	// HTTPPort is where the management API, metrics and status page
	// listen on the tailnet (default 80: http://NAME/ in a browser).
	HTTPPort int `yaml:"http_port,omitempty"`
	// Port is the UDP port WireGuard listens on for direct connections
	// from peers (default 41641, Tailscale's, so firewalls can expect it);
	// it answers only authenticated tailnet peers.
	Port int `yaml:"port,omitempty"`
	// DNS serves DNS on the tailnet addresses too (port 53): the way
	// primaries NOTIFY the node and secondaries transfer from it.
	DNS *bool `yaml:"dns,omitempty"`
	// Access maps tailnet identities to roles.
	Access Access `yaml:"access,omitempty"`
	// Metrics serves /metrics (Prometheus) on the management API.
	Metrics *bool `yaml:"metrics,omitempty"`
	// Dnstap copies queries and responses to a collector.
	Dnstap Dnstap `yaml:"dnstap,omitempty"`
	// Identity is the optional public "which node is this?" endpoint.
	Identity IdentityEndpoint `yaml:"identity,omitempty"`
}

// Access lists who is admin and who may read, by tailnet identity: a
// login name ("alice@example.com", or a headscale user name), a tag
// ("tag:ops"), or "*" for every identity on the tailnet.
type Access struct {
	Admin []string `yaml:"admin,omitempty"`
	Read  []string `yaml:"read,omitempty"`
	// Tenants grants, on a host, tenant by tenant, who may manage that
	// tenant and nothing else (tenant name → identities).
	Tenants map[string][]string `yaml:"tenants,omitempty"`
}

// Dnstap is the dnstap output: off while Target is empty.
type Dnstap struct {
	// Target is the collector's host:port (a tailnet name or address).
	Target string `yaml:"target,omitempty"`
	// Queue is how many exchanges wait for the sender before new ones
	// are dropped (default 512).
	Queue int `yaml:"queue,omitempty"`
}

// IdentityEndpoint is a plain-HTTP JSON document on the service addresses
// saying which node answered (name, location, zone serials). It is the
// one thing besides DNS and BGP reachable outside the tailnet, so it is off
// until Listen names addresses.
type IdentityEndpoint struct {
	Listen []HostPort `yaml:"listen,omitempty"`
}

// Overlay defaults.
const (
	DefaultOverlayHTTPPort = 80
	DefaultOverlayPort     = 41641
	DefaultOverlayStateDir = "tailnet"         // inside data_dir
	DefaultAuthKeyFile     = "tailnet.authkey" // inside data_dir
	DefaultDnstapQueue     = 512
)

// DNSOnTailnet reports whether DNS is served on the tailnet.
func (s *Overlay) DNSOnTailnet() bool { return s.DNS == nil || *s.DNS }

// MetricsOn reports whether /metrics is served.
func (s *Overlay) MetricsOn() bool { return s.Metrics == nil || *s.Metrics }

// StateDirIn returns the state directory for a node whose data lives in
// dataDir (resolved late: `run -data` moves data_dir after parsing).
func (s *Overlay) StateDirIn(dataDir string) string {
	if s.StateDir != "" {
		return s.StateDir
	}
	return filepath.Join(dataDir, DefaultOverlayStateDir)
}

// AuthKeyFileIn returns the file the auth key is read from when auth_key
// is not given.
func (s *Overlay) AuthKeyFileIn(dataDir string) string {
	if s.AuthKeyFile != "" {
		return s.AuthKeyFile
	}
	return filepath.Join(dataDir, DefaultAuthKeyFile)
}

func (s *Overlay) check(c *Config, line func(string) int) []string {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("line %d: overlay: %s", line(key), fmt.Sprintf(format, args...)))
	}
	// Management is reached over the tailnet, never on a public or IXP
	// interface: the loopback listener is for the box itself.
	if l := string(c.Management.Listen); l != "" {
		host, _, _ := net.SplitHostPort(l)
		if a, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !a.IsLoopback()) {
			errs = append(errs, fmt.Sprintf("line %d: management.listen %q: must be a loopback address; management is reached over the tailnet (overlay), never on the public side", line(l), l))
		}
	}
	if s.ControlURL != "" {
		u, err := url.Parse(s.ControlURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("control_url", "control_url %q: want an http:// or https:// URL", s.ControlURL)
		}
	}
	if s.AuthKey != "" && s.AuthKeyFile != "" {
		bad("auth_key", "give auth_key or auth_key_file, not both")
	}
	if s.Hostname != "" && !validHostLabel(s.Hostname) {
		bad("hostname", "hostname %q: want one DNS label (letters, digits, hyphens)", s.Hostname)
	}
	for _, t := range s.Tags {
		if !strings.HasPrefix(t, "tag:") || len(t) == len("tag:") {
			bad(t, "tag %q: tags look like tag:NAME", t)
		}
	}
	if s.HTTPPort < 0 || s.HTTPPort > 65535 {
		bad("http_port", "http_port %d: must be 1..65535", s.HTTPPort)
	}
	if s.Port < 0 || s.Port > 65535 || s.Port == 53 || s.Port == 179 {
		bad("port:", "port %d: must be 1..65535 and not DNS's or BGP's", s.Port)
	}
	for _, list := range [][]string{s.Access.Admin, s.Access.Read} {
		for _, who := range list {
			if who == "" || strings.ContainsAny(who, " \t") || who == "tag:" {
				bad("access", "access entry %q: want a login name, tag:NAME or *", who)
			}
		}
	}
	for t, list := range s.Access.Tenants {
		if !tenantName.MatchString(t) {
			bad(t, "access.tenants: %q is not a tenant name", t)
		}
		for _, who := range list {
			if who == "" || who == "*" || strings.ContainsAny(who, " \t") || who == "tag:" {
				bad(t, "access.tenants.%s: entry %q: want a login name or tag:NAME (not *)", t, who)
			}
		}
	}
	if t := s.Dnstap.Target; t != "" {
		host, port, err := net.SplitHostPort(t)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			bad("target", "dnstap.target %q: want host:port", t)
		}
	}
	if s.Dnstap.Queue < 0 {
		bad("queue", "dnstap.queue must not be negative")
	}
	for _, l := range s.Identity.Listen {
		if _, port, _ := net.SplitHostPort(string(l)); port == "53" || port == "179" {
			bad(string(l), "identity.listen %q: port %s belongs to DNS or BGP", l, port)
		}
	}
	return errs
}

func validHostLabel(s string) bool {
	if len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func (s *Overlay) setDefaults(c *Config) {
	if s.Hostname == "" {
		s.Hostname = hostLabel(c.Node.Name)
	}
	if s.HTTPPort == 0 {
		s.HTTPPort = DefaultOverlayHTTPPort
	}
	if s.Port == 0 {
		s.Port = DefaultOverlayPort
	}
	if len(s.Access.Read) == 0 {
		s.Access.Read = []string{"*"}
	}
	if s.Dnstap.Queue == 0 {
		s.Dnstap.Queue = DefaultDnstapQueue
	}
}

// hostLabel turns a node name into a tailnet host name: its first label,
// with anything a DNS label cannot hold replaced.
func hostLabel(name string) string {
	name, _, _ = strings.Cut(name, ".")
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return strings.Trim(string(b), "-")
}
