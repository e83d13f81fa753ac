package config

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// System is what PID 1 does for the node on a box: the host name, the
// hardware watchdog, the clock, the resolvers the box itself uses, logs
// and how long a planned stop may take. It is read only when shoestring
// runs as /init; `run` and `dev` ignore it. README.md beside this file
// documents every option with its default.
type System struct {
	// Hostname is the kernel host name (default: node.name).
	Hostname string   `yaml:"hostname,omitempty"`
	Watchdog Watchdog `yaml:"watchdog,omitempty"`
	NTP      NTP      `yaml:"ntp,omitempty"`
	// Resolvers are the recursive resolvers the box uses for its own
	// lookups (NTP server names, the overlay's control server), written
	// to /etc/resolv.conf. Never the node itself: it is authoritative only.
	Resolvers []HostPort `yaml:"resolvers,omitempty"`
	Logs      Logs       `yaml:"logs,omitempty"`
	// ShutdownTimeout bounds a planned reboot or poweroff: the node
	// drains, then stops; past this the box reboots regardless.
	ShutdownTimeout Duration `yaml:"shutdown_timeout,omitempty"`
}

// Watchdog configures the hardware watchdog.
type Watchdog struct {
	// Device is the watchdog device (default: the board's, /dev/watchdog);
	// "off" disables it.
	Device string `yaml:"device,omitempty"`
	// Timeout is programmed into the device: the box resets when the node
	// has not been healthy for this long.
	Timeout Duration `yaml:"timeout,omitempty"`
	// BootGrace is how long after boot the watchdog is fed whatever the
	// node's health, so that loading a large store does not reset the box.
	// 0 means none, so it is written even when 0 (see Drain.Linger).
	BootGrace Duration `yaml:"boot_grace"`
}

// NTP configures the clock.
type NTP struct {
	// Servers are NTP servers (name or address, optional :port), tried in
	// order; an empty list (after defaults: `servers: []` with
	// `disabled: true`) keeps only the restored clock.
	Servers []string `yaml:"servers,omitempty"`
	// Interval is how often the clock is checked against NTP.
	Interval Duration `yaml:"interval,omitempty"`
	// Disabled turns the NTP client off.
	Disabled bool `yaml:"disabled,omitempty"`
}

// Logs configures the log kept in RAM and on the data partition.
type Logs struct {
	// RingKiB is the RAM ring buffer the management API reads.
	RingKiB int `yaml:"ring_kib,omitempty"`
	// FileKiB bounds the log file on the data partition; at this size it
	// is rotated to one previous file, so at most twice this is kept.
	FileKiB int `yaml:"file_kib,omitempty"`
	// FlushInterval is how often new lines are written to the file
	// (errors sooner); fewer, larger writes spare SD cards.
	FlushInterval Duration `yaml:"flush_interval,omitempty"`
	// WriteKiBPerHour caps what is written to the file per hour; past it
	// lines stay in RAM only and the file says how many were skipped.
	WriteKiBPerHour int `yaml:"write_kib_per_hour,omitempty"`
	// Kernel copies kernel messages (/dev/kmsg) into the log (default on).
	Kernel *bool `yaml:"kernel,omitempty"`
}

// Defaults of the system section.
const (
	DefaultWatchdogTimeout   = Duration(30 * time.Second)
	DefaultWatchdogBootGrace = Duration(10 * time.Minute)
	DefaultNTPInterval       = Duration(15 * time.Minute)
	DefaultShutdownTimeout   = Duration(2 * time.Minute)
	DefaultLogRingKiB        = 1024
	DefaultLogFileKiB        = 8192
	DefaultLogFlushInterval  = Duration(time.Minute)
	DefaultLogWriteKiBPerHr  = 2048
)

// DefaultNTPServers are anycast NTP services that answer from nearby.
func DefaultNTPServers() []string {
	return []string{"time.cloudflare.com", "pool.ntp.org", "time.google.com"}
}

// DefaultResolvers are public anycast resolvers, both families.
func DefaultResolvers() []HostPort {
	return []HostPort{"1.1.1.1:53", "9.9.9.9:53", "[2606:4700:4700::1111]:53", "[2620:fe::fe]:53"}
}

var hostnameLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// ValidHostname reports whether s is a host name (RFC 1123 labels, 64
// bytes at most: the kernel's limit).
func ValidHostname(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !hostnameLabel.MatchString(l) {
			return false
		}
	}
	return true
}

func (s *System) check(c *Config, line func(string) int) []string {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("line %d: system: %s", line(key), fmt.Sprintf(format, args...)))
	}
	if s.Hostname != "" && !ValidHostname(s.Hostname) {
		bad(s.Hostname, "hostname %q: letters, digits and dashes in dot-separated labels, 64 bytes at most", s.Hostname)
	}
	w := s.Watchdog
	if w.Device != "" && w.Device != "off" && !strings.HasPrefix(w.Device, "/dev/") {
		bad(w.Device, "watchdog.device %q: a /dev path or \"off\"", w.Device)
	}
	if t := time.Duration(w.Timeout); t != 0 && (t < 5*time.Second || t > 10*time.Minute) {
		bad("timeout", "watchdog.timeout %s: must be 5s..10m", t)
	}
	for _, srv := range s.NTP.Servers {
		host := srv
		if h, p, err := net.SplitHostPort(srv); err == nil {
			host = h
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				bad(srv, "ntp server %q: bad port", srv)
			}
		}
		if net.ParseIP(host) == nil && !ValidHostname(strings.TrimSuffix(host, ".")) {
			bad(srv, "ntp server %q is neither an address nor a host name", srv)
		}
	}
	if i := time.Duration(s.NTP.Interval); i != 0 && (i < 16*time.Second || i > 36*time.Hour) {
		bad("interval", "ntp.interval %s: must be 16s..36h", i)
	}
	l := s.Logs
	if l.RingKiB != 0 && (l.RingKiB < 64 || l.RingKiB > 65536) {
		bad("ring_kib", "logs.ring_kib %d: must be 64..65536", l.RingKiB)
	}
	if l.FileKiB != 0 && (l.FileKiB < 64 || l.FileKiB > 1<<20) {
		bad("file_kib", "logs.file_kib %d: must be 64..1048576", l.FileKiB)
	}
	if l.WriteKiBPerHour < 0 {
		bad("write_kib_per_hour", "logs.write_kib_per_hour must not be negative")
	}
	if f := time.Duration(l.FlushInterval); f != 0 && (f < time.Second || f > time.Hour) {
		bad("flush_interval", "logs.flush_interval %s: must be 1s..1h", f)
	}
	if t := time.Duration(s.ShutdownTimeout); t != 0 && t < 5*time.Second {
		bad("shutdown_timeout", "shutdown_timeout %s: at least 5s", t)
	}
	return errs
}

func (s *System) setDefaults(c *Config) {
	if s.Hostname == "" && ValidHostname(c.Node.Name) {
		s.Hostname = c.Node.Name
	}
	if s.Watchdog.Timeout == 0 {
		s.Watchdog.Timeout = DefaultWatchdogTimeout
	}
	if c.unset("system.watchdog.boot_grace", s.Watchdog.BootGrace) {
		s.Watchdog.BootGrace = DefaultWatchdogBootGrace
	}
	if len(s.NTP.Servers) == 0 && !s.NTP.Disabled {
		s.NTP.Servers = DefaultNTPServers()
	}
	if s.NTP.Interval == 0 {
		s.NTP.Interval = DefaultNTPInterval
	}
	if len(s.Resolvers) == 0 {
		s.Resolvers = DefaultResolvers()
	}
	if s.Logs.RingKiB == 0 {
		s.Logs.RingKiB = DefaultLogRingKiB
	}
	if s.Logs.FileKiB == 0 {
		s.Logs.FileKiB = DefaultLogFileKiB
	}
	if s.Logs.FlushInterval == 0 {
		s.Logs.FlushInterval = DefaultLogFlushInterval
	}
	if s.Logs.WriteKiBPerHour == 0 {
		s.Logs.WriteKiBPerHour = DefaultLogWriteKiBPerHr
	}
	if s.Logs.Kernel == nil {
		on := true
		s.Logs.Kernel = &on
	}
	if s.ShutdownTimeout == 0 {
		s.ShutdownTimeout = DefaultShutdownTimeout
	}
}
