package node

import (
	"net/netip"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
)

// withAbuse adds the dns: section's cookie, RRL and per-client settings
// to the server config.
func withAbuse(a config.DNSAbuse, synced func() bool, c dnsserver.Config) dnsserver.Config {
	c.CookiesOff = !a.CookiesOn()
	for _, k := range a.Secrets() {
		c.CookieSecrets = append(c.CookieSecrets, dnsserver.CookieSecret(k))
	}
	c.RequireCookieUDP = a.RequireCookieUDP
	c.ClockSynced = synced
	c.TCPMaxConnsPerClient = a.TCPMaxConnsPerClient
	r := a.RRL
	rrl := &dnsserver.RRLConfig{
		ResponsesPerSecond: r.ResponsesPerSecond,
		NXDomainsPerSecond: r.NXDomainsPerSecond,
		NoDataPerSecond:    r.NoDataPerSecond,
		ReferralsPerSecond: r.ReferralsPerSecond,
		ErrorsPerSecond:    r.ErrorsPerSecond,
		Window:             time.Duration(r.Window),
		Slip:               2,
		IPv4Prefix:         r.IPv4Prefix,
		IPv6Prefix:         r.IPv6Prefix,
		TableSize:          r.TableSize,
	}
	if r.Slip != nil {
		rrl.Slip = *r.Slip
	}
	for _, p := range r.Exempt {
		rrl.Exempt = append(rrl.Exempt, netip.Prefix(p.Prefix))
	}
	if r.Enabled {
		c.RRL = rrl
	}
	c.ClientIPv4Prefix, c.ClientIPv6Prefix = r.IPv4Prefix, r.IPv6Prefix
	return c
}
