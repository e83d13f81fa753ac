package secondary

import (
	"net/netip"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/xfr"
)

// Notify handles a NOTIFY (RFC 1996) and returns the rcode to answer
// with. It is accepted only for a secondary zone, only from one of that
// zone's primaries (by address: the source port is anyone's), and only
// signed with that primary's key when it has one. A primary named by its
// (tailnet) name is known by the address it was last reached at; a NOTIFY
// that may be from one not reached yet starts a refresh (which learns the
// address) and is refused, so the primary's retry is accepted. An accepted NOTIFY
// starts a refresh at once, from the notifying primary first.
func (m *Manager) Notify(n *xfr.Notification) int {
	from := n.From.Addr().Unmap()
	m.mu.Lock()
	z := m.zones[n.Origin]
	var candidates []xfr.Remote
	unknown := false // a named primary not reached yet
	if z != nil {
		for _, p := range z.primaries {
			a := m.addrOfLocked(p)
			if a == from {
				candidates = append(candidates, p)
			}
			unknown = unknown || !a.IsValid()
		}
	}
	m.mu.Unlock()
	if z == nil {
		m.log.Info("secondary: NOTIFY for a zone that is not a secondary here; ignored", "zone", n.Origin, "from", n.From)
		return dns.RcodeNotAuth
	}
	if len(candidates) == 0 && unknown {
		// It may come from a named primary whose address we have not
		// learnt yet (none was dialled since the node started): refresh
		// from the configured primaries — harmless whoever sent it —
		// which learns their addresses, so the primary's retry is
		// accepted.
		m.log.Info("secondary: NOTIFY from an address not known yet; refreshing from the zone's primaries", "zone", n.Origin, "from", n.From)
		m.mu.Lock()
		m.triggerLocked(z, false, netip.Addr{})
		m.mu.Unlock()
		return dns.RcodeRefused
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
