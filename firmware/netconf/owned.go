package netconf

import (
	"fmt"
	"net/netip"
	"slices"
)

// Service addresses that come and go while the box runs: a host's
// tenants, each added and removed by the operator. netconf stays the one
// owner of lo's addresses (anything on lo it does not know is removed),
// so they are handed to it rather than added beside it.

// SetAnycast makes addrs the anycast addresses of owner (a tenant's name),
// in addition to the configured ones, and applies the change at once, so
// that the addresses are on lo when it returns (a host binds its tenant's
// sockets on them next). An empty addrs removes owner's addresses.
func (m *Manager) SetAnycast(owner string, addrs []netip.Addr) error {
	for _, a := range addrs {
		if !a.IsValid() || a.IsLoopback() {
			return fmt.Errorf("netconf: %s: bad anycast address %v", owner, a)
		}
	}
	m.mu.Lock()
	if m.owned == nil {
		m.owned = map[string][]netip.Addr{}
	}
	if len(addrs) == 0 {
		delete(m.owned, owner)
	} else {
		m.owned[owner] = slices.Clone(addrs)
	}
	m.mu.Unlock()
	_, err := m.Apply()
	return err
}

// anycast is every address lo should carry: the configured ones and
// every owner's.
func (m *Manager) anycast() []netip.Addr {
	out := slices.Clone(m.cfg.Anycast)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, as := range m.owned {
		out = append(out, as...)
	}
	return out
}
