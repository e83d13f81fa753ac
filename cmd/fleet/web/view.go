// Package web is the controller's face: the JSON API the CLI uses, the
// dashboard page (exceptions first, a tile per site, the overall
// green/amber/red, rollouts with their waves and gates, the serial
// check, the catchment map) and the Prometheus http_sd target list. It
// reads the inventory, the poller, the serial check, the rollouts and
// the catchment measurements; it decides nothing itself beyond how to
// colour what they report.
package web

import (
	"fmt"
	"sort"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/catchment"
	"github.com/shoestring-dns/shoestring/cmd/fleet/desired"
	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
	"github.com/shoestring-dns/shoestring/cmd/fleet/serial"
)

// Colours.
const (
	Green = "green"
	Amber = "amber"
	Red   = "red"
)

// NodeView is a node with its live state and verdict.
type NodeView struct {
	inventory.Node
	Live     live.State `json:"live"`
	Want     string     `json:"want,omitempty"` // desired config hash
	Drift    string     `json:"drift"`          // in sync, drift, rollout, no group, unknown
	Colour   string     `json:"colour"`
	Problems []string   `json:"problems,omitempty"`
	MaxLag   int64      `json:"max_lag"`
}

// Site is the nodes of one site.
type Site struct {
	Name   string     `json:"name"`
	Colour string     `json:"colour"`
	Nodes  []NodeView `json:"nodes"`
}

// Overview is the whole fleet: what the dashboard and `status` show.
type Overview struct {
	Colour     string             `json:"colour"`
	Exceptions []string           `json:"exceptions"`
	Sites      []Site             `json:"sites"`
	Rollouts   []*rollout.Rollout `json:"rollouts"`
	Serials    serial.Report      `json:"serials"`
	// Catchment is the newest finished catchment map, nil when none.
	Catchment  *catchment.Measurement `json:"catchment,omitempty"`
	Generated  time.Time              `json:"generated"`
	Controller Controller             `json:"controller"`
}

// staleAfter: a node not reached for this long is red.
const staleAfter = 15 * time.Second

// Build computes the overview.
func Build(nodes []inventory.Node, groups []desired.Group, states map[string]live.State, serials serial.Report, ros []*rollout.Rollout) Overview {
	ov := Overview{Colour: Green, Serials: serials, Rollouts: ros, Generated: time.Now().UTC()}
	tmpl := map[string]string{}
	for _, g := range groups {
		tmpl[g.Name] = g.Template
	}
	inRollout := map[string]string{} // node -> target of the unfinished rollout
	for _, ro := range ros {
		if ro.Finished() {
			continue
		}
		for _, n := range ro.Nodes {
			inRollout[n.Name] = n.Target
		}
		if ro.State == rollout.Halted || ro.State == rollout.Kept {
			ov.Exceptions = append(ov.Exceptions, fmt.Sprintf("rollout %s %s: %s", ro.ID, ro.State, ro.Halt))
		}
	}
	sites := map[string]*Site{}
	for _, n := range nodes {
		v := view(n, tmpl, states[n.Name], serials, inRollout)
		for _, p := range v.Problems {
			ov.Exceptions = append(ov.Exceptions, n.Name+": "+p)
		}
		name := n.Site
		if name == "" {
			name = "(no site)"
		}
		s := sites[name]
		if s == nil {
			s = &Site{Name: name, Colour: Green}
			sites[name] = s
		}
		s.Nodes = append(s.Nodes, v)
		s.Colour = worst(s.Colour, v.Colour)
		ov.Colour = worst(ov.Colour, v.Colour)
	}
	for _, ro := range ros {
		switch ro.State {
		case rollout.Halted, rollout.Kept:
			ov.Colour = Red
		case rollout.Running:
			ov.Colour = worst(ov.Colour, Amber)
		}
	}
	for _, s := range sites {
		ov.Sites = append(ov.Sites, *s)
	}
	// Exceptions first: the worst sites lead.
	sort.Slice(ov.Sites, func(i, j int) bool {
		a, b := ov.Sites[i], ov.Sites[j]
		if rank(a.Colour) != rank(b.Colour) {
			return rank(a.Colour) > rank(b.Colour)
		}
		return a.Name < b.Name
	})
	return ov
}

func view(n inventory.Node, tmpl map[string]string, st live.State, serials serial.Report, inRollout map[string]string) NodeView {
	v := NodeView{Node: n, Live: st, Colour: Green, Drift: "no group"}
	bad := func(c, p string) {
		v.Colour = worst(v.Colour, c)
		v.Problems = append(v.Problems, p)
	}
	if n.Unassigned {
		bad(Amber, "unassigned: discovered, not described in the inventory")
	}
	switch {
	case st.Polled.IsZero():
		bad(Amber, "not polled yet")
	case !st.Reached:
		if st.LastContact.IsZero() || time.Since(st.LastContact) > staleAfter {
			bad(Red, "unreachable: "+st.Error)
		}
	}
	if h := st.Health; h != nil {
		for _, p := range h.Parts {
			if p.OK {
				continue
			}
			if p.Name == "serving" {
				bad(Red, "not serving: "+p.Why)
			} else {
				bad(Amber, p.Name+": "+p.Why)
			}
		}
	}
	if c := st.Config; c != nil && c.Last != nil && c.Last.State == "rolled_back" {
		bad(Amber, "last config apply rolled back: "+c.Last.Error)
	}
	if t, ok := tmpl[n.Group]; ok && n.Group != "" {
		doc, err := desired.Render(t, n)
		switch {
		case err != nil:
			v.Drift = "unknown"
			bad(Amber, "desired config: "+err.Error())
		case st.Config == nil:
			v.Want, v.Drift = desired.Hash(doc), "unknown"
		default:
			v.Want = desired.Hash(doc)
			switch {
			case st.Config.Hash == v.Want:
				v.Drift = "in sync"
			case inRollout[n.Name] != "":
				v.Drift = "rollout"
			default:
				v.Drift = "drift"
				bad(Amber, "config drift: running "+short(st.Config.Hash)+", want "+short(v.Want))
			}
		}
	}
	for _, row := range serials.ForNode(n.Name) {
		if row.Lag > v.MaxLag {
			v.MaxLag = row.Lag
		}
		if row.Stale {
			bad(Amber, fmt.Sprintf("zone %s serial %d is %d behind %s", row.Zone, row.Serial, row.Lag, row.Primary))
		}
	}
	return v
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func rank(c string) int {
	switch c {
	case Red:
		return 2
	case Amber:
		return 1
	}
	return 0
}

func worst(a, b string) string {
	if rank(b) > rank(a) {
		return b
	}
	return a
}
