package dnsserver

import (
	"net/netip"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

// FromConfig is the server's part of the node config document (the dns:
// section and the node's name): everything but the logger, the transfer
// handler and the clock source, which the caller connects.
func FromConfig(doc *config.Config) Config {
	c := Config{
		Identity:       doc.Node.Name,
		NSID:           doc.DNS.NSID,
		Version:        doc.DNS.Version,
		MaxUDPSize:     doc.DNS.MaxUDPSize,
		UDPWorkers:     doc.DNS.UDPWorkers,
		TCPIdleTimeout: time.Duration(doc.DNS.TCPIdleTimeout),
		TCPMaxConns:    doc.DNS.TCPMaxConns,
	}
	for _, l := range doc.DNS.Listen {
		c.Listen = append(c.Listen, string(l))
	}
	a := doc.DNS.DNSAbuse
	c.CookiesOff = !a.CookiesOn()
	for _, k := range a.Secrets() {
		c.CookieSecrets = append(c.CookieSecrets, CookieSecret(k))
	}
	c.RequireCookieUDP = a.RequireCookieUDP
	c.TCPMaxConnsPerClient = a.TCPMaxConnsPerClient
	r := a.RRL
	rrl := &RRLConfig{
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
