package netconf

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// Lease is the management link's DHCPv4 lease.
type Lease struct {
	Link     string
	Addr     netip.Prefix // the address with the subnet's length
	Router   netip.Addr   // invalid when the server gave none
	Server   netip.Addr
	Obtained time.Time // DORA or last renewal
	Renew    time.Time // T1
	Expires  time.Time
}

// DHCP client timing.
const (
	dhcpExchangeTimeout = 3 * time.Second
	dhcpRetries         = 3
	dhcpMaxBackoff      = time.Minute
	// minLeaseRenew stops a server's tiny T1 from turning the client into
	// a busy loop.
	minLeaseRenew = time.Second
)

func (m *Manager) currentLease() *Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lease == nil {
		return nil
	}
	l := *m.lease
	return &l
}

// runDHCP holds a lease on link until ctx ends: DORA, renew at T1 (and
// retry until the lease expires), start over after a NAK or expiry. The
// lease is applied through Apply, so its address and default route follow
// the same reconcile as the rest; the address carries the lease's lifetime,
// so the kernel drops it if the node is gone.
func (m *Manager) runDHCP(ctx context.Context, link string) {
	log := m.log.With("link", link)
	backoff := time.Second
	for ctx.Err() == nil {
		c, err := nclient4.New(link, nclient4.WithTimeout(dhcpExchangeTimeout), nclient4.WithRetry(dhcpRetries))
		var nl *nclient4.Lease
		if err == nil {
			nl, err = c.Request(ctx)
		}
		if err != nil {
			if c != nil {
				c.Close()
			}
			if ctx.Err() != nil {
				return
			}
			m.setDHCPError(err)
			log.Warn("dhcp: no lease", "err", err, "retry_in", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, dhcpMaxBackoff)
			continue
		}
		backoff = time.Second
		m.holdLease(ctx, c, nl, link)
		c.Close()
	}
}

// holdLease installs a lease and renews it until it is lost or ctx ends.
func (m *Manager) holdLease(ctx context.Context, c *nclient4.Client, nl *nclient4.Lease, link string) {
	log := m.log.With("link", link)
	for {
		l, err := leaseFrom(nl, link)
		if err != nil {
			m.setDHCPError(err)
			log.Warn("dhcp: unusable lease", "err", err)
			m.setLease(nil)
			return
		}
		m.setLease(l)
		log.Info("dhcp: lease", "addr", l.Addr, "router", l.Router, "server", l.Server, "expires", l.Expires.Format(time.TimeOnly))
		m.refreshLifetime(l)

		// Renew at T1; after a failure retry at a quarter of the time
		// left, until the lease runs out.
		wait := time.Until(l.Renew)
		for {
			if !sleep(ctx, max(wait, minLeaseRenew)) {
				return
			}
			if !time.Now().Before(l.Expires) {
				log.Warn("dhcp: lease expired")
				m.setLease(nil)
				return
			}
			rctx, cancel := context.WithTimeout(ctx, dhcpExchangeTimeout*dhcpRetries)
			renewed, err := c.Renew(rctx, nl)
			cancel()
			if err == nil {
				nl = renewed
				break
			}
			if ctx.Err() != nil {
				return
			}
			var nak *nclient4.ErrNak
			if errors.As(err, &nak) {
				log.Warn("dhcp: renewal refused (NAK); starting over")
				m.setLease(nil)
				return
			}
			m.setDHCPError(err)
			wait = time.Until(l.Expires) / 4
			log.Warn("dhcp: renewal failed", "err", err, "retry_in", max(wait, minLeaseRenew).Round(time.Second))
		}
	}
}

func leaseFrom(nl *nclient4.Lease, link string) (*Lease, error) {
	ack := nl.ACK
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr)
	if !ok || !ip.Unmap().Is4() || ip.Unmap().IsUnspecified() {
		return nil, errors.New("lease without an IPv4 address")
	}
	ip = ip.Unmap()
	bits := 32
	if mask := ack.SubnetMask(); mask != nil {
		bits, _ = mask.Size()
	}
	l := &Lease{Link: link, Addr: netip.PrefixFrom(ip, bits), Obtained: nl.CreationTime}
	if rs := ack.Router(); len(rs) > 0 {
		if r, ok := netip.AddrFromSlice(rs[0]); ok {
			l.Router = r.Unmap()
		}
	}
	if s, ok := netip.AddrFromSlice(ack.ServerIdentifier()); ok {
		l.Server = s.Unmap()
	}
	dur := ack.IPAddressLeaseTime(time.Hour)
	t1 := ack.IPAddressRenewalTime(dur / 2)
	if t1 <= 0 || t1 >= dur {
		t1 = dur / 2
	}
	l.Expires = l.Obtained.Add(dur)
	l.Renew = l.Obtained.Add(t1)
	return l, nil
}

// setLease records the lease (nil: none) and applies it.
func (m *Manager) setLease(l *Lease) {
	m.mu.Lock()
	m.lease = l
	if l != nil {
		m.dhcpErr = ""
	}
	m.mu.Unlock()
	changes, err := m.Apply()
	if len(changes) > 0 {
		m.log.Info("network: dhcp lease applied", "changes", changes)
	}
	if err != nil {
		m.log.Error("network: applying dhcp lease", "err", err)
	}
}

// refreshLifetime extends the address's lifetime to the renewed lease's
// (Apply leaves an address that is present alone).
func (m *Manager) refreshLifetime(l *Lease) {
	link, err := m.h.LinkByName(l.Link)
	if err != nil {
		return
	}
	secs := max(int(time.Until(l.Expires)/time.Second), 1)
	a := &netlink.Addr{IPNet: prefixNet(l.Addr), ValidLft: secs, PreferedLft: secs}
	if err := m.h.AddrReplace(link, a); err != nil {
		m.log.Warn("dhcp: extending the address lifetime", "err", err)
	}
}

func (m *Manager) setDHCPError(err error) {
	m.mu.Lock()
	m.dhcpErr = err.Error()
	m.mu.Unlock()
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
