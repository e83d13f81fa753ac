package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Tenants configures host mode (`shoestring host`, package tenant): the
// tenants a bare-metal server runs, each its own name server in its own
// chroot, uid, namespaces and cgroup, announced by the host's one BGP
// speaker. Tenants added with `shoestring ctl tenant add` join the ones
// listed here. README.md beside this file documents every option with its
// default.
type Tenants struct {
	// Enabled makes a box (our PID 1) run host mode instead of the node:
	// `shoestring host` with this document. `shoestring host` itself
	// does not look at it.
	Enabled bool `yaml:"enabled,omitempty"`
	// Dir holds each tenant's root, data and zones (DIR/NAME/...) and the
	// list of tenants added through the API. Default: DATA_DIR/tenants.
	Dir string `yaml:"dir,omitempty"`
	// UIDBase is the first uid (and gid) handed to a tenant; each tenant
	// gets its own, kept for its life.
	UIDBase int `yaml:"uid_base,omitempty"`
	// Cgroup is the parent cgroup of the tenants' cgroups, below the
	// host's own cgroup (never at the root of a hierarchy it does not
	// own).
	Cgroup string `yaml:"cgroup,omitempty"`
	// Port is the DNS port bound on each tenant address.
	Port int `yaml:"port,omitempty"`
	// UDPSockets is how many SO_REUSEPORT UDP sockets are bound per
	// tenant address; 0 means one per CPU the tenant may use.
	UDPSockets int `yaml:"udp_sockets,omitempty"`
	// RestartDelay is how long after a tenant process died it is
	// started again (doubling, up to a minute, while it keeps dying
	// within a minute of its start).
	RestartDelay Duration `yaml:"restart_delay,omitempty"`
	// HostCpuset keeps the host's own threads (supervision, zone
	// copies, BGP, the API) on these cores ("0", "0-1"), off the cores
	// its tenants are pinned to; its tenants may use the cores the host
	// had before, within their cpusets. Empty: any core.
	HostCpuset string `yaml:"host_cpuset,omitempty"`
	// List is the tenants of the config file.
	List []Tenant `yaml:"list,omitempty"`
}

// Tenant is one tenant: its name, what is announced for it, where it
// answers and what it may use. It is also the body of the API's tenant
// add, so it carries JSON names too.
type Tenant struct {
	Name string `yaml:"name" json:"name"`
	// Prefixes are announced while the tenant answers on its addresses
	// inside them.
	Prefixes []string `yaml:"prefixes" json:"prefixes"`
	// Addresses are its service addresses (put on lo by the host), each
	// inside one of Prefixes.
	Addresses []string `yaml:"addresses" json:"addresses"`
	// CPU is how many cores' worth of time it may use (1.5); 0: no limit.
	CPU float64 `yaml:"cpu,omitempty" json:"cpu,omitempty"`
	// MemoryMB is its memory limit in MiB; 0: no limit.
	MemoryMB int `yaml:"memory_mb,omitempty" json:"memory_mb,omitempty"`
	// Pids is the most processes and threads it may have.
	Pids int `yaml:"pids,omitempty" json:"pids,omitempty"`
	// Cpuset pins it to cores ("2-3", "0,2"); empty: any core.
	Cpuset string `yaml:"cpuset,omitempty" json:"cpuset,omitempty"`
	// Zones are master files on the host, copied into the tenant's data
	// when it starts (the API takes the files' text instead).
	Zones []Zone `yaml:"zones,omitempty" json:"-"`
	// Canary is the health check's question ("de. SOA"); default: the
	// SOA of its first zone, else id.server CH TXT.
	Canary string `yaml:"canary,omitempty" json:"canary,omitempty"`
	// DNS is the tenant's own abuse resistance: the dns section's
	// cookies, cookie_secrets, require_cookie_udp,
	// tcp_max_conns_per_client and rrl, with the same defaults. Each
	// tenant has its own RRL table and cookie secrets; the host's dns
	// section does not apply to tenants.
	DNS *DNSAbuse `yaml:"dns,omitempty" json:"dns,omitempty"`
	// Secondary is the tenant's own secondary service, in the format
	// of the node's secondary section: its TSIG keys, zones transferred
	// from its primaries, catalog zones (whose members it transfers
	// too), limits and timers (same defaults). NOTIFY reaches it on its
	// addresses. Unset: it serves only the zones given as files.
	Secondary *Secondary `yaml:"secondary,omitempty" json:"secondary,omitempty"`
	// Dnstap copies the tenant's queries and responses to its own
	// collector (target: IP:PORT, dialled from the host's network
	// namespace; queue as overlay.dnstap's), with its name as dnstap
	// identity. Unset: none.
	Dnstap *Dnstap `yaml:"dnstap,omitempty" json:"dnstap,omitempty"`
	// NetworkNamespace runs it in a network namespace of its own, with
	// nothing in it but a loopback that is down: it answers on the
	// sockets the host bound and passed in, and reaches nothing but what
	// Dials lists (its primaries, its dnstap collector), which the host
	// connects for it from the host's own namespace. Default false (the
	// host's network stack, still without listening sockets of its own).
	NetworkNamespace bool `yaml:"network_namespace,omitempty" json:"network_namespace,omitempty"`
}

// Defaults of the tenants section.
const (
	DefaultTenantUIDBase      = 3000000
	DefaultTenantCgroup       = "shoestring-tenants"
	DefaultTenantPort         = 53
	DefaultTenantRestartDelay = Duration(time.Second)
	DefaultTenantPids         = 512
)

var tenantName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// cpusetList is a list of cores as cpuset.cpus takes it.
var cpusetList = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)

func (t *Tenants) check(c *Config, line func(string) int) []string {
	var errs []string
	if t.Dir != "" && !filepath.IsAbs(t.Dir) {
		errs = append(errs, fmt.Sprintf("line %d: tenants.dir %q: must be an absolute path", line("dir"), t.Dir))
	}
	if t.UIDBase != 0 && t.UIDBase < 1000 {
		errs = append(errs, fmt.Sprintf("line %d: tenants.uid_base %d: must be at least 1000 (system users live below)", line("uid_base"), t.UIDBase))
	}
	if strings.Contains(t.Cgroup, "..") || strings.HasPrefix(t.Cgroup, "/") {
		errs = append(errs, fmt.Sprintf("line %d: tenants.cgroup %q: a relative path without ..", line("cgroup"), t.Cgroup))
	}
	if t.Port < 0 || t.Port > 65535 || t.UDPSockets < 0 || t.UDPSockets > 256 {
		errs = append(errs, fmt.Sprintf("line %d: tenants: port must be 1..65535 and udp_sockets 0..256", line("port")))
	}
	if t.RestartDelay < 0 {
		errs = append(errs, fmt.Sprintf("line %d: tenants.restart_delay: negative", line("restart_delay")))
	}
	if t.HostCpuset != "" && !cpusetList.MatchString(t.HostCpuset) {
		errs = append(errs, fmt.Sprintf("line %d: tenants.host_cpuset %q: a list of cores like 0-1,3", line("host_cpuset"), t.HostCpuset))
	}
	if err := CheckTenants(t.List); err != nil {
		errs = append(errs, fmt.Sprintf("line %d: tenants.list: %v", line("list"), err))
	}
	return errs
}

func (t *Tenants) setDefaults(c *Config) {
	if t.Dir == "" {
		// Absolute even under a relative data_dir (dev mode's var/dev):
		// the host hands the path to processes in other mount namespaces.
		t.Dir = filepath.Join(c.DataDir, "tenants")
		if abs, err := filepath.Abs(t.Dir); err == nil {
			t.Dir = abs
		}
	}
	if t.UIDBase == 0 {
		t.UIDBase = DefaultTenantUIDBase
	}
	if t.Cgroup == "" {
		t.Cgroup = DefaultTenantCgroup
	}
	if t.Port == 0 {
		t.Port = DefaultTenantPort
	}
	if c.unset("tenants.restart_delay", t.RestartDelay) {
		t.RestartDelay = DefaultTenantRestartDelay
	}
	for i := range t.List {
		t.List[i].SetDefaults()
	}
}

// SetDefaults fills in a tenant's unset limits.
func (t *Tenant) SetDefaults() {
	if t.Pids == 0 {
		t.Pids = DefaultTenantPids
	}
	if t.DNS == nil {
		t.DNS = &DNSAbuse{}
	}
	t.DNS.SetDefaults()
	if t.Secondary != nil {
		t.Secondary.setDefaults(nil)
	}
}

// CheckTenants checks each tenant and that no two share a name, prefix or
// address.
func CheckTenants(list []Tenant) error {
	var errs []string
	names := map[string]bool{}
	prefixes := map[netip.Prefix]string{}
	addrs := map[netip.Addr]string{}
	for _, t := range list {
		if err := t.Check(); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if names[t.Name] {
			errs = append(errs, fmt.Sprintf("tenant %s listed twice", t.Name))
		}
		names[t.Name] = true
		for _, p := range t.PrefixList() {
			for q, other := range prefixes {
				if q.Overlaps(p) {
					errs = append(errs, fmt.Sprintf("tenant %s: prefix %v overlaps tenant %s's %v", t.Name, p, other, q))
				}
			}
			prefixes[p] = t.Name
		}
		for _, a := range t.AddressList() {
			if other, ok := addrs[a]; ok {
				errs = append(errs, fmt.Sprintf("tenant %s: address %v is tenant %s's too", t.Name, a, other))
			}
			addrs[a] = t.Name
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// Check reports what is wrong with one tenant, naming it.
func (t *Tenant) Check() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !tenantName.MatchString(t.Name) {
		return fmt.Errorf("tenant name %q: 1-32 of a-z, 0-9 and - (not at either end)", t.Name)
	}
	var ps []netip.Prefix
	for _, s := range t.Prefixes {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Is4In6() {
			bad("prefix %q is not a prefix like 192.0.2.0/24", s)
			continue
		}
		if p != p.Masked() {
			bad("prefix %q has host bits set (%v?)", s, p.Masked())
		}
		ps = append(ps, p)
	}
	if len(t.Prefixes) == 0 {
		bad("at least one prefix")
	}
	if len(t.Addresses) == 0 {
		bad("at least one address")
	}
	for _, s := range t.Addresses {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Is4In6() || a.IsLoopback() || a.IsUnspecified() || a.Zone() != "" {
			bad("address %q is not a unicast IP address", s)
			continue
		}
		in := false
		for _, p := range ps {
			in = in || p.Contains(a)
		}
		if !in {
			bad("address %v is in none of its prefixes", a)
		}
	}
	for _, p := range ps {
		has := false
		for _, a := range t.AddressList() {
			has = has || p.Contains(a)
		}
		if !has {
			bad("prefix %v holds none of its addresses (nothing to check it by)", p)
		}
	}
	if t.CPU < 0 || t.CPU > 1024 {
		bad("cpu %v: 0 (no limit) up to the number of cores", t.CPU)
	}
	if t.MemoryMB < 0 || (t.MemoryMB > 0 && t.MemoryMB < 16) {
		bad("memory_mb %d: 0 (no limit) or at least 16", t.MemoryMB)
	}
	if t.Pids < 0 {
		bad("pids %d: negative", t.Pids)
	}
	if t.Cpuset != "" && !cpusetList.MatchString(t.Cpuset) {
		bad("cpuset %q: a list of cores like 0-1,3", t.Cpuset)
	}
	for _, z := range t.Zones {
		if z.Origin == "" || z.File == "" {
			bad("zone needs origin and file")
		}
	}
	if t.Canary != "" {
		if _, _, err := t.CanaryQuestion(); err != nil {
			bad("%v", err)
		}
	}
	if t.DNS != nil {
		for _, p := range t.DNS.Problems() {
			bad("%s", p)
		}
	}
	if t.Secondary != nil {
		// Its zone files count as zones the secondary section may not
		// list again.
		var c Config
		for _, z := range t.Zones {
			c.Zones = append(c.Zones, z)
		}
		for _, p := range t.Secondary.check(&c, func(string) int { return 0 }) {
			bad("%s", strings.TrimPrefix(p, "line 0: "))
		}
		for _, rs := range t.secondaryRemotes() {
			for _, r := range rs {
				if r.Address.Host != "" {
					bad("secondary: primary %s: a tenant's primaries are IP addresses (it has no tailnet and no resolver)", r.Address)
				}
			}
		}
		if o := t.Secondary.Outbound; len(o.Notify) > 0 || o.Catalog != "" {
			bad("secondary.outbound: notify and catalog do not apply to a tenant (it has no zones of its own to offer downstream)")
		}
	}
	if d := t.Dnstap; d != nil {
		if ap, err := netip.ParseAddrPort(d.Target); err != nil || ap.Port() == 0 {
			bad("dnstap.target %q: want IP:PORT (a tenant has no tailnet and no resolver)", d.Target)
		}
		if d.Queue < 0 {
			bad("dnstap.queue must not be negative")
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("tenant %s: %s", t.Name, strings.Join(errs, "; "))
	}
	return nil
}

// PrefixList is Prefixes parsed (the valid ones).
func (t *Tenant) PrefixList() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range t.Prefixes {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// AddressList is Addresses parsed (the valid ones).
func (t *Tenant) AddressList() []netip.Addr {
	var out []netip.Addr
	for _, s := range t.Addresses {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// SecondaryOrigins are the zones the tenant transfers from its
// primaries (not its catalogs' members, which only the catalogs name).
func (t *Tenant) SecondaryOrigins() []string {
	if t.Secondary == nil {
		return nil
	}
	var out []string
	for _, z := range t.Secondary.Zones {
		out = append(out, dns.CanonicalName(z.Origin))
	}
	return out
}

// TenantDial is one connection a tenant's config has it open: to Addr
// over Network ("tcp" or "udp"), from Source (the zero value: the
// kernel's choice).
type TenantDial struct {
	Network string
	Addr    netip.AddrPort
	Source  netip.Addr
}

func (d TenantDial) String() string {
	s := d.Network + " " + d.Addr.String()
	if d.Source.IsValid() {
		s += " from " + d.Source.String()
	}
	return s
}

// Dials is every connection the tenant's config has it open: to its
// primaries (its templates', zones' and catalogs') over TCP (transfers)
// and UDP (SOA queries), to its NOTIFY downstreams over UDP, to its
// dnstap collector over TCP. A tenant in a network namespace of its own
// can open these and nothing else: its host opens them for it (package
// tenant, broker.go). Named remotes (which a tenant may not have) are
// left out.
func (t *Tenant) Dials() []TenantDial {
	var out []TenantDial
	add := func(network string, r Remote) {
		if r.Address.Host == "" {
			out = append(out, TenantDial{Network: network, Addr: r.Address.AddrPort(), Source: r.Source.Addr})
		}
	}
	if t.Secondary != nil {
		for _, rs := range t.secondaryRemotes() {
			for _, r := range rs {
				add("tcp", r)
				add("udp", r)
			}
		}
		for _, r := range t.Secondary.Outbound.Notify {
			add("udp", r)
		}
	}
	if t.Dnstap != nil {
		if ap, err := netip.ParseAddrPort(t.Dnstap.Target); err == nil {
			out = append(out, TenantDial{Network: "tcp", Addr: ap})
		}
	}
	return out
}

func (t *Tenant) secondaryRemotes() [][]Remote {
	var out [][]Remote
	for _, x := range t.Secondary.Templates {
		out = append(out, x.Primaries)
	}
	for _, z := range t.Secondary.Zones {
		out = append(out, z.Primaries)
	}
	for _, c := range t.Secondary.Catalogs {
		out = append(out, c.Primaries)
	}
	return out
}

// Redacted is the tenant without its TSIG secrets, to show.
func (t Tenant) Redacted() Tenant {
	if t.Secondary == nil || len(t.Secondary.Keys) == 0 {
		return t
	}
	sec := *t.Secondary
	sec.Keys = make([]TSIGKey, len(t.Secondary.Keys))
	for i, k := range t.Secondary.Keys {
		k.Secret = "(hidden)"
		sec.Keys[i] = k
	}
	t.Secondary = &sec
	return t
}

// CanaryQuestion parses Canary ("de. SOA"): empty name for none.
func (t *Tenant) CanaryQuestion() (name string, qtype uint16, err error) {
	f := strings.Fields(t.Canary)
	if len(f) == 0 {
		return "", 0, nil
	}
	if len(f) != 2 {
		return "", 0, fmt.Errorf("canary %q: NAME TYPE, like \"de. SOA\"", t.Canary)
	}
	if _, ok := dns.IsDomainName(f[0]); !ok {
		return "", 0, fmt.Errorf("canary %q: bad name", t.Canary)
	}
	qt, ok := dns.StringToType[strings.ToUpper(f[1])]
	if !ok {
		return "", 0, fmt.Errorf("canary %q: unknown type %s", t.Canary, f[1])
	}
	return dns.Fqdn(f[0]), qt, nil
}
