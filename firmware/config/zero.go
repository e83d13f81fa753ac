package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// What 0 means for each duration option. Leaving an option out always
// means its default. Writing 0 ("0s", "0") either means something an
// operator would expect — and then it is kept, not replaced by the
// default — or is refused with the reason, so that a zero is never
// silently turned into the default. Paths are the options' dotted names,
// list elements without an index ("bgp.peers.hold_time").
// TestZeroTableComplete keeps this table and the Duration fields in step.
var durationZero = map[string]struct {
	allowed bool
	why     string // allowed: what 0 does; refused: why, and what to do
}{
	"dns.tcp_idle_timeout":                       {why: "idle TCP connections must be closed some time (RFC 7766); leave it out for 10s"},
	"network.reconcile":                          {why: "the network section must be re-applied periodically; leave it out for 30s"},
	"bgp.hold_time":                              {why: "a hold time of 0 (no keepalives, RFC 4271) is not supported; 3s to 65535s"},
	"bgp.peers.hold_time":                        {why: "a hold time of 0 (no keepalives, RFC 4271) is not supported; 3s to 65535s"},
	"bgp.peers.max_prefix_restart":               {why: "the session must come back some time; leave it out for 1m"},
	"bgp.peers.bfd.min_tx":                       {why: "BFD intervals are at least 1ms; leave it out for 300ms"},
	"bgp.peers.bfd.min_rx":                       {why: "BFD intervals are at least 1ms; leave it out for 300ms"},
	"health.interval":                            {why: "checks need time between rounds, at least 10ms; leave it out for 200ms"},
	"health.timeout":                             {why: "a query needs some time to be answered; leave it out for 150ms (or interval, if shorter)"},
	"health.drain.wait":                          {why: "GRACEFUL_SHUTDOWN needs time to move traffic before the withdrawal; use a short wait such as 1s"},
	"health.drain.linger":                        {allowed: true, why: "stop answering as soon as the prefixes are withdrawn"},
	"secondary.limits.timeout":                   {why: "a transfer must end some time; leave it out for 15m"},
	"secondary.limits.idle_timeout":              {why: "a stalled transfer must be given up some time; leave it out for 10s"},
	"secondary.timers.refresh_min":               {why: "a zone whose SOA says refresh 0 would be polled without pause; at least 1s"},
	"secondary.timers.refresh_max":               {why: "it bounds the SOA refresh from above; leave it out for 24h"},
	"secondary.timers.retry_min":                 {why: "a zone whose SOA says retry 0 would be retried without pause; at least 1s"},
	"secondary.timers.retry_max":                 {why: "it bounds the SOA retry from above; leave it out for 1h"},
	"secondary.timers.expire_min":                {why: "a zone whose SOA says expire 0 would expire at once; at least 1s"},
	"system.watchdog.timeout":                    {why: "to turn the watchdog off, say watchdog.device: off"},
	"system.watchdog.boot_grace":                 {allowed: true, why: "no grace: from boot on, the watchdog is fed only while the node is healthy"},
	"system.ntp.interval":                        {why: "to turn NTP off, say ntp.disabled: true"},
	"system.logs.flush_interval":                 {why: "lines are written in batches, at least 1s apart; leave it out for 1m"},
	"system.shutdown_timeout":                    {why: "a planned stop needs time to drain; at least 5s"},
	"tenants.list.dns.rrl.window":                {why: "a flood's debt must be remembered some time, 1s to 1h; leave it out for 15s"},
	"tenants.list.secondary.limits.timeout":      {why: "a transfer must end some time; leave it out for 15m"},
	"tenants.list.secondary.limits.idle_timeout": {why: "a stalled transfer must be given up some time; leave it out for 10s"},
	"tenants.list.secondary.timers.refresh_min":  {why: "a zone whose SOA says refresh 0 would be polled without pause; at least 1s"},
	"tenants.list.secondary.timers.refresh_max":  {why: "it bounds the SOA refresh from above; leave it out for 24h"},
	"tenants.list.secondary.timers.retry_min":    {why: "a zone whose SOA says retry 0 would be retried without pause; at least 1s"},
	"tenants.list.secondary.timers.retry_max":    {why: "it bounds the SOA retry from above; leave it out for 1h"},
	"tenants.list.secondary.timers.expire_min":   {why: "a zone whose SOA says expire 0 would expire at once; at least 1s"},
	"tenants.restart_delay":                      {allowed: true, why: "a tenant that dies is started again at once (and then after doubling delays while it keeps dying)"},
	"ota.soak":                                   {why: "a new version must prove itself for some time before it is committed; at least 5s"},
}

// zeroDurations finds the duration options written as 0: refused ones
// are errors with their line, allowed ones are remembered so that the
// defaults leave them at 0.
func (c *Config) zeroDurations(doc *yaml.Node) []string {
	var errs []string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, e := range n.Content {
				walk(e, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				rule, ok := durationZero[p]
				if !ok || v.Kind != yaml.ScalarNode {
					walk(v, p)
					continue
				}
				if d, err := time.ParseDuration(v.Value); (err != nil || d != 0) && v.Value != "0" {
					continue
				}
				if !rule.allowed {
					errs = append(errs, fmt.Sprintf("line %d: %s: 0 is not allowed: %s", v.Line, p, rule.why))
					continue
				}
				if c.zero == nil {
					c.zero = map[string]bool{}
				}
				c.zero[p] = true
			}
		}
	}
	walk(doc, "")
	return errs
}

// unset says whether a duration option is to get its default: it is 0
// and was not written as 0 where 0 means something.
func (c *Config) unset(path string, d Duration) bool {
	return d == 0 && !c.zero[path]
}
