// Package overlay is the node's management overlay: it joins a tailnet
// with an embedded Tailscale node (tsnet, a userspace network stack inside
// this process), so that the management API, metrics, status page and zone
// transfers are reachable over WireGuard from the operators' tailnet and
// from nowhere else — a box at a friend's IXP needs no open port but DNS
// and BGP.
//
// The embedded node talks to its control server and its peers only: log
// upload to Tailscale and NAT port mapping (UPnP, NAT-PMP, PCP) are turned
// off in code, whatever the environment says. The firmware build also
// leaves most optional Tailscale features out with ts_omit_* build tags
// (see the Makefile).
//
// Tailnet is one membership of a tailnet (the node's, or ctl's ephemeral
// one); Member is the node's, as its config describes it: joined on first
// use, the dial function that reaches tailnet addresses and names, DNS
// served on the tailnet, the management listeners, and a cached status
// that never waits on the network. Who may call the management API is
// decided by firmware/access, from WhoIs.
package overlay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/envknob"
	"tailscale.com/ipn"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/tsnet"

	"github.com/shoestring-dns/shoestring/firmware/access"
	"github.com/shoestring-dns/shoestring/firmware/overlay/status"
)

// Options describe the node's membership of the tailnet.
type Options struct {
	// Hostname is the node's name on the tailnet.
	Hostname string
	// Dir keeps the node's keys and login (the data partition).
	Dir string
	// ControlURL is the coordination server; empty means Tailscale's.
	ControlURL string
	// AuthKey registers the node the first time; later starts use the
	// login kept in Dir.
	AuthKey string
	Tags    []string
	// Port is the UDP port for WireGuard; 0 picks one.
	Port uint16
	// Ephemeral nodes keep nothing on disk and are removed from the
	// tailnet when they go away (ctl uses one).
	Ephemeral bool
	Log       *slog.Logger
}

// Tailnet is the node's membership of the tailnet.
type Tailnet struct {
	o   Options
	srv *tsnet.Server
	lc  *local.Client
	log *slog.Logger
	tmp string // an ephemeral node's directory, removed on Close

	up     chan struct{} // closed once the node first runs
	upOnce sync.Once
	mu     sync.Mutex
	err    error // why it is not up, while it is not
}

// New starts joining the tailnet and returns at once: a box serves DNS
// from its store whether or not its control server is reachable, so
// nothing waits for the tailnet unless it asks to (WaitUp).
func New(o Options) (*Tailnet, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	quiet()
	srv := &tsnet.Server{
		Hostname:      o.Hostname,
		Dir:           o.Dir,
		ControlURL:    o.ControlURL,
		AuthKey:       o.AuthKey,
		AdvertiseTags: o.Tags,
		Ephemeral:     o.Ephemeral,
		Port:          o.Port,
		UserLogf:      logf(o.Log, slog.LevelInfo),
		Logf:          logf(o.Log, slog.LevelDebug),
	}
	var tmp string
	if o.Ephemeral {
		// Keys stay in memory; tsnet still wants a directory of its own.
		srv.Store = new(mem.Store)
		if srv.Dir == "" {
			dir, err := os.MkdirTemp("", "shoestring-tailnet-")
			if err != nil {
				return nil, err
			}
			srv.Dir, tmp = dir, dir
		}
	} else if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("tailnet state: %w", err)
	}
	if err := srv.Start(); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("tailnet: %w", err)
	}
	lc, err := srv.LocalClient()
	if err != nil {
		srv.Close()
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("tailnet: %w", err)
	}
	return &Tailnet{o: o, srv: srv, lc: lc, log: o.Log, tmp: tmp, up: make(chan struct{}), err: errors.New("starting")}, nil
}

// quiet turns off log upload and port mapping for every tsnet node in the
// process. Setting the knobs races with running nodes reading them, so
// they are set only while still unset: by the first node, before it runs.
func quiet() {
	if !envknob.NoLogsNoSupport() {
		envknob.SetNoLogsNoSupport()
	}
	if os.Getenv("TS_DISABLE_PORTMAPPER") != "1" {
		envknob.Setenv("TS_DISABLE_PORTMAPPER", "1")
	}
}

// logf adapts tsnet's printf logging to slog; the backend's chatter goes
// to debug, and is not even formatted unless debug is on.
func logf(l *slog.Logger, level slog.Level) func(string, ...any) {
	return func(format string, args ...any) {
		if !l.Enabled(context.Background(), level) {
			return
		}
		l.Log(context.Background(), level, "tailnet: "+strings.TrimSuffix(fmt.Sprintf(format, args...), "\n"))
	}
}

// Run brings the node up and keeps trying until ctx ends; it returns
// when the node first runs or ctx ends.
func (t *Tailnet) Run(ctx context.Context) {
	for {
		st, err := t.srv.Up(ctx)
		if err == nil {
			t.mu.Lock()
			t.err = nil
			t.mu.Unlock()
			t.log.Info("tailnet: up", "name", strings.TrimSuffix(st.Self.DNSName, "."), "ips", st.TailscaleIPs)
			t.upOnce.Do(func() { close(t.up) })
			return
		}
		t.mu.Lock()
		t.err = err
		t.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		t.log.Warn("tailnet: not up yet", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// Up is closed once the node is running on the tailnet.
func (t *Tailnet) Up() <-chan struct{} { return t.up }

// WaitUp waits until the node runs on the tailnet.
func (t *Tailnet) WaitUp(ctx context.Context) error {
	select {
	case <-t.up:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tailnet not up: %w", ctx.Err())
	}
}

// Listen listens on the node's tailnet addresses only.
func (t *Tailnet) Listen(network, addr string) (net.Listener, error) {
	return t.srv.Listen(network, addr)
}

// ListenPacket listens for UDP on one tailnet address.
func (t *Tailnet) ListenPacket(network, addr string) (net.PacketConn, error) {
	return t.srv.ListenPacket(network, addr)
}

// Dial connects over the tailnet (names are the tailnet's MagicDNS names).
func (t *Tailnet) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return t.srv.Dial(ctx, network, addr)
}

// HTTPClient returns a client whose connections go over the tailnet.
func (t *Tailnet) HTTPClient() *http.Client { return t.srv.HTTPClient() }

// Addrs returns the node's tailnet addresses once it has them.
func (t *Tailnet) Addrs() (v4, v6 netip.Addr) { return t.srv.TailscaleIPs() }

// Close leaves the tailnet (an ephemeral node is removed from it).
func (t *Tailnet) Close() error {
	err := t.srv.Close()
	if t.tmp != "" {
		os.RemoveAll(t.tmp)
	}
	return err
}

// Status is the node's place on the tailnet (its own package, so that
// what reports it need not link the tailnet).
type Status = status.Status

// Peer is another node on the tailnet.
type Peer = status.Peer

// Status describes the node on the tailnet and its peers. It asks the
// embedded node, so it waits as long as ctx lets it.
func (t *Tailnet) Status(ctx context.Context) Status {
	out := Status{Control: t.o.ControlURL, State: "starting"}
	t.mu.Lock()
	if t.err != nil {
		out.Error = t.err.Error()
	}
	t.mu.Unlock()
	st, err := t.lc.Status(ctx)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.State = stateName(st.BackendState)
	if st.Self != nil {
		out.Name = strings.TrimSuffix(st.Self.DNSName, ".")
	}
	out.IPs = append(out.IPs, st.TailscaleIPs...)
	for _, p := range st.Peer {
		peer := Peer{Name: strings.TrimSuffix(p.DNSName, "."), Online: p.Online, LastSeen: p.LastSeen}
		peer.IPs = append(peer.IPs, p.TailscaleIPs...)
		if p.Tags != nil {
			peer.Tags = p.Tags.AsSlice()
		}
		out.Peers = append(out.Peers, peer)
	}
	sort.Slice(out.Peers, func(i, j int) bool { return out.Peers[i].Name < out.Peers[j].Name })
	return out
}

// watch signals changed (without blocking) whenever the embedded node's
// state, its own node or its peers change, until ctx ends.
func (t *Tailnet) watch(ctx context.Context, changed chan<- struct{}) {
	for ctx.Err() == nil {
		w, err := t.lc.WatchIPNBus(ctx, ipn.NotifyInitialState|ipn.NotifyPeerChanges)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for {
			n, err := w.Next()
			if err != nil {
				break
			}
			if n.State != nil || n.SelfChange != nil || len(n.PeersChanged) > 0 || len(n.PeersRemoved) > 0 || len(n.PeerChangedPatch) > 0 {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}
		w.Close()
	}
}

// WhoIs asks the tailnet who is calling from remoteAddr (it makes Tailnet
// an access.Resolver).
func (t *Tailnet) WhoIs(ctx context.Context, remoteAddr string) (access.Caller, error) {
	w, err := t.lc.WhoIs(ctx, remoteAddr)
	if err != nil {
		return access.Caller{Addr: remoteAddr}, err
	}
	c := access.Caller{Addr: remoteAddr}
	if w.Node != nil {
		c.Node = strings.TrimSuffix(w.Node.Name, ".")
		if host, _, _ := strings.Cut(c.Node, "."); host != "" {
			c.Node = host
		}
		c.Tags = slices.Clone(w.Node.Tags)
	}
	if w.UserProfile != nil && len(c.Tags) == 0 {
		c.Login = w.UserProfile.LoginName
	}
	return c, nil
}

func stateName(s string) string {
	switch s {
	case ipn.Running.String():
		return "running"
	case ipn.NeedsLogin.String():
		return "needs login"
	case ipn.NeedsMachineAuth.String():
		return "needs approval"
	case ipn.Stopped.String():
		return "stopped"
	case ipn.NoState.String(), ipn.Starting.String():
		return "starting"
	}
	return strings.ToLower(s)
}
