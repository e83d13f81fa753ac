package web

import (
	"net"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
)

// Target is one entry of Prometheus http_sd: where a node's /metrics is,
// with its inventory as labels.
type Target struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// SD lists every node's metrics target (its management API, which
// serves /metrics when overlay.metrics is on).
func SD(nodes []inventory.Node, states map[string]live.State) []Target {
	out := []Target{}
	for _, n := range nodes {
		if _, _, err := net.SplitHostPort(n.API); err != nil {
			continue
		}
		l := map[string]string{"node": n.Name}
		add := func(k, v string) {
			if v != "" {
				l[k] = v
			}
		}
		add("site", n.Site)
		add("region", n.Region)
		add("country", n.Country)
		add("city", n.City)
		add("provider", n.Provider)
		add("wave", n.Wave)
		add("group", n.Group)
		add("version", states[n.Name].Version)
		out = append(out, Target{Targets: []string{n.API}, Labels: l})
	}
	return out
}
