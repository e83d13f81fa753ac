package netconf

import (
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// Status is what the node's networking looks like now, for the API.
type Status struct {
	LastApply time.Time
	// LastError is what the last Apply could not do ("" when all of it
	// was applied).
	LastError string
	// Changes are those of the last Apply that changed anything, at
	// ChangedAt: at start, the initial configuration; later, drift undone.
	Changes   []string
	ChangedAt time.Time
	Links     []LinkStatus
	// Lease is the DHCP lease, if any; DHCPError the last DHCP failure.
	Lease     *Lease
	DHCPError string
}

// LinkStatus is one managed link (lo first) as the kernel has it.
type LinkStatus struct {
	Name  string
	Up    bool
	MTU   int
	Addrs []netip.Prefix
	Error string
}

// Status reads the managed links from the kernel.
func (m *Manager) Status() Status {
	m.mu.Lock()
	st := Status{
		LastApply: m.lastApply,
		LastError: m.lastErr,
		Changes:   append([]string(nil), m.changes...),
		ChangedAt: m.changedAt,
		DHCPError: m.dhcpErr,
	}
	if m.lease != nil {
		l := *m.lease
		st.Lease = &l
	}
	m.mu.Unlock()
	names := []string{"lo"}
	for _, l := range m.cfg.Links {
		names = append(names, l.Name)
	}
	for _, n := range names {
		ls := LinkStatus{Name: n}
		l, err := m.h.LinkByName(n)
		if err != nil {
			ls.Error = err.Error()
			st.Links = append(st.Links, ls)
			continue
		}
		ls.Up = l.Attrs().Flags&net.FlagUp != 0
		ls.MTU = l.Attrs().MTU
		addrs, err := m.h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			ls.Error = err.Error()
		}
		for _, a := range addrs {
			if p, ok := addrPrefix(a); ok {
				ls.Addrs = append(ls.Addrs, p)
			}
		}
		st.Links = append(st.Links, ls)
	}
	return st
}
