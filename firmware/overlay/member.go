package overlay

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/access"
	"github.com/shoestring-dns/shoestring/firmware/config"
)

// statusEvery is how often Member refreshes its cached status.
const statusEvery = 5 * time.Second

// Member is the node's membership of the tailnet as the overlay section of
// its config describes it. The tailnet is joined on first use, since
// subsystems started before the overlay (the secondary service dialling a
// primary on the tailnet, say) may need it first. Without overlay.enabled
// (dev mode), or when the tailnet cannot start, every method still works:
// Dial dials directly and management listens on loopback, so the node
// serves DNS rather than going dark.
type Member struct {
	cfg     config.Overlay
	dataDir string
	mgmt    string // management listen address without a tailnet
	log     *slog.Logger

	once    sync.Once
	tailnet *Tailnet
	err     error

	status atomic.Pointer[Status] // the last status read, never waited for
}

// NewMember reads the overlay section of c; nothing starts until the
// tailnet is first used or Run is called.
func NewMember(c *config.Config, log *slog.Logger) *Member {
	return &Member{cfg: c.Overlay, dataDir: c.DataDir, mgmt: string(c.Management.Listen), log: log}
}

// Tailnet returns the node's tailnet membership, joining on first use; nil
// when the overlay is off or could not start.
func (m *Member) Tailnet() *Tailnet {
	if !m.cfg.Enabled {
		return nil
	}
	m.once.Do(func() {
		o := m.cfg
		key := o.AuthKey
		if key == "" {
			if b, err := os.ReadFile(o.AuthKeyFileIn(m.dataDir)); err == nil {
				key = strings.TrimSpace(string(b))
			}
		}
		m.tailnet, m.err = New(Options{
			Hostname:   o.Hostname,
			Dir:        o.StateDirIn(m.dataDir),
			ControlURL: o.ControlURL,
			AuthKey:    key,
			Tags:       o.Tags,
			Port:       uint16(o.Port),
			Log:        m.log,
		})
		if m.err != nil {
			m.log.Error("tailnet: cannot start; management stays on loopback", "err", m.err)
		}
	})
	return m.tailnet
}

// Dial connects to addr over the tailnet when the address is on it (a
// tailnet IP or a tailnet name) and the node is on a tailnet, and directly
// otherwise: primaries, secondaries and the dnstap collector are reached
// this way.
func (m *Member) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if t := m.Tailnet(); t != nil && OnTailnet(addr) {
		return t.Dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

var (
	tailnet4 = netip.MustParsePrefix("100.64.0.0/10")
	tailnet6 = netip.MustParsePrefix("fd7a:115c:a1e0::/48")
)

// OnTailnet reports whether addr (host or host:port) is a tailnet address
// (100.64.0.0/10, fd7a:115c:a1e0::/48) or a name, which only the tailnet
// resolves here.
func OnTailnet(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return true
	}
	a = a.Unmap()
	return tailnet4.Contains(a) || tailnet6.Contains(a)
}

// DNSServer is what Member serves on the tailnet: the node's DNS server.
type DNSServer interface {
	ServeListener(net.Listener) error
	ServePacketConn(net.PacketConn) error
}

// Run joins the tailnet, serves dns on it when the config says so
// (overlay.dns), and keeps the cached status fresh, until ctx ends; then
// it leaves. It returns at once.
func (m *Member) Run(ctx context.Context, dns DNSServer) {
	t := m.Tailnet()
	if t == nil {
		return
	}
	go t.Run(ctx)
	context.AfterFunc(ctx, func() { t.Close() })
	if m.cfg.DNSOnTailnet() {
		go m.serveDNS(ctx, t, dns)
	}
	go m.keepStatus(ctx, t)
}

// keepStatus reads the tailnet's status when it changes — the node's
// state, its own node, peers joining, leaving or changing, as the embedded
// node announces them — and every statusEvery besides, so that readers
// (the overview, metrics, health) never wait and are never behind the
// embedded node by more than a read.
func (m *Member) keepStatus(ctx context.Context, t *Tailnet) {
	changed := make(chan struct{}, 1)
	go t.watch(ctx, changed)
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		st := t.Status(c)
		cancel()
		if ctx.Err() != nil {
			return
		}
		m.status.Store(&st)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// Status returns the last status read (no network involved); false when
// the node is not on a tailnet.
func (m *Member) Status() (Status, bool) {
	if !m.cfg.Enabled {
		return Status{}, false
	}
	if st := m.status.Load(); st != nil {
		return *st, true
	}
	st := Status{State: "starting", Control: m.cfg.ControlURL}
	if m.err != nil {
		st.State, st.Error = "failed", m.err.Error()
	}
	return st, true
}

// LiveStatus asks the tailnet for its status now (the tailnet endpoint);
// false when the node is not on a tailnet.
func (m *Member) LiveStatus(ctx context.Context) (Status, bool) {
	t := m.Tailnet()
	if t == nil {
		return Status{}, false
	}
	return t.Status(ctx), true
}

// Reachable reports whether management can be reached as configured: on
// the tailnet, that the node runs there (from the cached status). Without
// overlay.enabled the management API is on loopback, which needs nothing.
func (m *Member) Reachable() (bool, string) {
	if !m.cfg.Enabled {
		return true, "management on loopback"
	}
	st, _ := m.Status()
	if st.State != "running" {
		why := "tailnet " + st.State
		if st.Error != "" {
			why += ": " + st.Error
		}
		return false, why
	}
	return true, "on the tailnet as " + st.Name
}

// serveDNS answers DNS on the tailnet addresses (port 53): the way
// primaries NOTIFY this node and secondaries transfer from it. UDP needs
// the address, known once the node is up.
func (m *Member) serveDNS(ctx context.Context, t *Tailnet, dns DNSServer) {
	if err := t.WaitUp(ctx); err != nil {
		return
	}
	if ln, err := t.Listen("tcp", ":53"); err != nil {
		m.log.Error("tailnet: DNS over TCP not served", "err", err)
	} else {
		dns.ServeListener(ln)
	}
	v4, v6 := t.Addrs()
	for _, a := range []netip.Addr{v4, v6} {
		if !a.IsValid() {
			continue
		}
		pc, err := t.ListenPacket("udp", netip.AddrPortFrom(a, 53).String())
		if err != nil {
			m.log.Error("tailnet: DNS over UDP not served", "addr", a, "err", err)
			continue
		}
		dns.ServePacketConn(pc)
	}
	m.log.Info("tailnet: DNS served", "v4", v4, "v6", v6)
}

// Listeners returns where the management API listens: the tailnet only,
// on a node that joins one; the management listen address (loopback)
// otherwise.
func (m *Member) Listeners() ([]net.Listener, error) {
	if t := m.Tailnet(); t != nil {
		ln, err := t.Listen("tcp", fmt.Sprintf(":%d", m.cfg.HTTPPort))
		if err != nil {
			return nil, fmt.Errorf("tailnet: %w", err)
		}
		return []net.Listener{ln}, nil
	}
	ln, err := net.Listen("tcp", m.mgmt)
	if err != nil {
		return nil, err
	}
	return []net.Listener{ln}, nil
}

// Resolver finds who calls the management API: the tailnet's WhoIs, or
// everyone on loopback as a local admin.
func (m *Member) Resolver() access.Resolver {
	if t := m.Tailnet(); t != nil {
		return t
	}
	return access.Loopback{}
}

// Policy is overlay.access as the access control applies it.
func (m *Member) Policy() access.Policy {
	return access.Policy{Admin: m.cfg.Access.Admin, Read: m.cfg.Access.Read, Tenants: m.cfg.Access.Tenants}
}
