// Package tailnet is the controller's own membership of the tailnet
// (tsnet, through firmware/overlay, with an identity and tags of its
// own, which the nodes' overlay.access maps to the admin role): the
// client the poller and rollouts reach node APIs with, and discovery:
// every peer carrying the discovery tag that the inventory does not know
// is added as "unassigned".
package tailnet

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/overlay"
)

// Options configure the controller's membership.
type Options struct {
	Hostname   string
	Dir        string // keys and login
	ControlURL string
	AuthKey    string
	Tags       []string
	// DiscoverTag: peers carrying it are nodes; empty: every peer.
	DiscoverTag string
	// APIPort is the port nodes serve their API on over the tailnet
	// (overlay.http_port, default 80).
	APIPort string
	Log     *slog.Logger
}

// Member is the controller on the tailnet.
type Member struct {
	o  Options
	tn *overlay.Tailnet
}

// Join starts joining and returns at once; Run keeps the membership.
func Join(ctx context.Context, o Options) (*Member, error) {
	if o.APIPort == "" {
		o.APIPort = "80"
	}
	tn, err := overlay.New(overlay.Options{Hostname: o.Hostname, Dir: o.Dir, ControlURL: o.ControlURL, AuthKey: o.AuthKey, Tags: o.Tags, Log: o.Log})
	if err != nil {
		return nil, err
	}
	go tn.Run(ctx)
	context.AfterFunc(ctx, func() { tn.Close() })
	return &Member{o: o, tn: tn}, nil
}

// Client reaches a node's API over the tailnet.
func (m *Member) Client(addr string) *api.Client {
	c := api.NewClient(addr)
	h := *m.tn.HTTPClient()
	h.Timeout = 5 * time.Second
	c.HTTP = &h
	return c
}

// Discover adds the tailnet's nodes the inventory lacks, as unassigned;
// it returns the names added.
func (m *Member) Discover(ctx context.Context, inv inventory.Inventory) ([]string, error) {
	st := m.tn.Status(ctx)
	var added []string
	for _, p := range st.Peers {
		if m.o.DiscoverTag != "" && !has(p.Tags, m.o.DiscoverTag) {
			continue
		}
		if len(p.IPs) == 0 || p.Name == "" {
			continue
		}
		name, _, _ := strings.Cut(p.Name, ".")
		ok, err := inv.Discovered(name, net.JoinHostPort(p.IPs[0].String(), m.o.APIPort))
		if err != nil {
			return added, err
		}
		if ok {
			added = append(added, name)
		}
	}
	return added, nil
}

// Run discovers every interval until ctx ends.
func (m *Member) Run(ctx context.Context, inv inventory.Inventory, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if added, err := m.Discover(ctx, inv); err != nil {
			m.o.Log.Warn("tailnet discovery", "err", err)
		} else if len(added) > 0 {
			m.o.Log.Info("tailnet: new nodes, unassigned", "nodes", added)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func has(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
