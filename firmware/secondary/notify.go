package secondary

import (
	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/xfr"
)

// Notify handles a NOTIFY (RFC 1996) and returns the rcode to answer
// with. It is accepted only for a secondary zone, only from one of that
// zone's primaries (by address: the source port is anyone's), and only
// signed with that primary's key when it has one. A primary named by its
// (tailnet) name is known by the address it was last reached at. An accepted NOTIFY
// starts a refresh at once, from the notifying primary first.
func (m *Manager) Notify(n *xfr.Notification) int {
	from := n.From.Addr().Unmap()
	m.mu.Lock()
	z := m.zones[n.Origin]
	var candidates []xfr.Remote
	if z != nil {
		for _, p := range z.primaries {
			if m.addrOfLocked(p) == from {
				candidates = append(candidates, p)
			}
		}
	}
	m.mu.Unlock()
	if z == nil {
		m.log.Info("secondary: NOTIFY for a zone that is not a secondary here; ignored", "zone", n.Origin, "from", n.From)
		return dns.RcodeNotAuth
	}
	if len(candidates) == 0 {
		m.log.Warn("secondary: NOTIFY from an address that is not a primary of the zone; refused", "zone", n.Origin, "from", n.From)
		return dns.RcodeRefused
	}
	var verr error
	ok := false
	for _, p := range candidates {
		if verr = n.Verify(p.Key); verr == nil {
			ok = true
			break
		}
	}
	if !ok {
		m.log.Warn("secondary: NOTIFY with a bad or missing signature; refused", "zone", n.Origin, "from", n.From, "err", verr)
		return dns.RcodeNotAuth
	}
	if have := m.b.SOA(n.Origin); have != nil && n.HasSerial && n.Serial == have.Serial {
		m.mu.Lock()
		expired := z.st.Expired
		m.mu.Unlock()
		if !expired {
			m.log.Debug("secondary: NOTIFY for the serial we have", "zone", n.Origin, "serial", n.Serial)
			return dns.RcodeSuccess
		}
	}
	m.log.Info("secondary: NOTIFY", "zone", n.Origin, "from", n.From, "serial", n.Serial)
	m.mu.Lock()
	m.triggerLocked(z, false, from)
	m.mu.Unlock()
	return dns.RcodeSuccess
}
