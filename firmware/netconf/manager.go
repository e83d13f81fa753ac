package netconf

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Manager applies one Config and keeps the box in line with it.
type Manager struct {
	cfg Config
	log *slog.Logger
	h   *netlink.Handle
	// root is where sysctls are read and written (procSys).
	root string

	applyMu sync.Mutex // one reconcile at a time

	mu        sync.Mutex
	lease     *Lease // current DHCP lease, nil without one
	dhcpErr   string
	lastApply time.Time
	lastErr   string
	changedAt time.Time
	changes   []string // of the last Apply that changed anything
	kick      chan struct{}
	owned     map[string][]netip.Addr // anycast addresses by owner (owned.go)
}

// New checks cfg and opens a netlink handle in the current network
// namespace; nothing changes until Apply or Run.
func New(cfg Config, logger *slog.Logger) (*Manager, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, log: logger, h: h, root: procSys, kick: make(chan struct{}, 1)}, nil
}

// Close releases the netlink handle.
func (m *Manager) Close() { m.h.Close() }

// Run keeps the config applied until ctx ends: it re-applies every
// Reconcile interval and soon after any change to a managed link (a link
// that was down or renamed comes back configured), and runs the DHCP
// client where configured. Call Apply first; Run does not wait for it.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, l := range m.cfg.Links {
		if l.DHCP4 {
			wg.Go(func() { m.runDHCP(ctx, l.Name) })
		}
	}
	wg.Go(func() { m.watchLinks(ctx) })

	tick := time.NewTicker(m.cfg.Reconcile)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-m.kick:
			// Link events come in bursts (our own changes cause some);
			// one pass after they settle is enough.
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
		changes, err := m.Apply()
		if len(changes) > 0 {
			m.log.Warn("network drifted from the config; re-applied", "changes", changes)
		}
		if err != nil {
			m.log.Error("network config not fully applied", "err", err)
		}
	}
}

// trigger asks Run for a re-apply soon.
func (m *Manager) trigger() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// watchLinks triggers a re-apply when a managed link (or lo) changes state.
func (m *Manager) watchLinks(ctx context.Context) {
	managed := map[string]bool{"lo": true}
	for _, l := range m.cfg.Links {
		managed[l.Name] = true
	}
	for ctx.Err() == nil {
		updates := make(chan netlink.LinkUpdate, 16)
		done := make(chan struct{})
		failed := make(chan struct{})
		var once sync.Once
		err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
			ErrorCallback: func(error) { once.Do(func() { close(failed) }) },
		})
		if err != nil {
			m.log.Warn("netlink link updates unavailable; relying on periodic re-apply", "err", err)
			return
		}
		func() {
			defer close(done)
			for {
				select {
				case <-ctx.Done():
					return
				case <-failed:
					return
				case u, ok := <-updates:
					if !ok {
						return
					}
					if u.Link != nil && managed[u.Link.Attrs().Name] {
						m.trigger()
					}
				}
			}
		}()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Apply makes the kernel match the config once and returns the changes
// it made, in order; an error lists whatever could not be applied (the
// rest is applied regardless).
func (m *Manager) Apply() ([]string, error) {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	var r reconcile
	r.m = m
	r.run()
	err := errors.Join(r.errs...)
	m.mu.Lock()
	m.lastApply = time.Now()
	m.lastErr = ""
	if err != nil {
		m.lastErr = err.Error()
	}
	if len(r.changes) > 0 {
		m.changes = r.changes
		m.changedAt = m.lastApply
	}
	m.mu.Unlock()
	return r.changes, err
}

// Settle waits, up to timeout, until no address on the managed links is
// still tentative (IPv6 duplicate address detection, about a second after
// an address is added): until then it cannot be a source, and a BGP
// session dialled from it would hang until its connect timeout. It
// reports whether everything settled.
func (m *Manager) Settle(ctx context.Context, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !m.tentative() {
			return true
		}
		if time.Now().After(deadline) || !sleep(ctx, 50*time.Millisecond) {
			return false
		}
	}
}

func (m *Manager) tentative() bool {
	for _, l := range m.cfg.Links {
		link, err := m.h.LinkByName(l.Name)
		if err != nil {
			continue
		}
		addrs, err := m.h.AddrList(link, netlink.FAMILY_V6)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.Flags&unix.IFA_F_TENTATIVE != 0 && a.Flags&unix.IFA_F_DADFAILED == 0 {
				return true
			}
		}
	}
	return false
}
