// Package serial is the fleet's SOA serial check: for every zone, the
// serial each node serves against its primary's (asked directly, SOA
// over UDP then TCP), the lag, and which nodes are stale. A zone with no
// primary (loaded from a file or the API) is checked against the highest
// serial any node serves. A secondary zone's reference is the highest
// serial its primaries answer; when none answers, its rows are unknown,
// never fresh.
package serial

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
)

// Row is one zone on one node.
type Row struct {
	Zone    string `json:"zone"`
	Node    string `json:"node"`
	Serial  uint32 `json:"serial"`
	Primary string `json:"primary"` // address, or "fleet" (the highest served)
	// Reference is the primary's serial; nil when unknown.
	Reference *uint32 `json:"reference,omitempty"`
	Lag       int64   `json:"lag"` // serials behind (RFC 1982), 0 when current or unknown
	Stale     bool    `json:"stale"`
	Error     string  `json:"error,omitempty"`
}

// Report is one check.
type Report struct {
	Checked time.Time `json:"checked"`
	Rows    []Row     `json:"rows"`
	Stale   int       `json:"stale"`
	Unknown int       `json:"unknown"`
}

// SOA asks a primary for zone's serial.
type SOA func(primary, zone string) (uint32, error)

// QuerySOA asks over UDP, retrying over TCP when truncated.
func QuerySOA(primary, zone string) (uint32, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	c := &dns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, primary)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.Exchange(m, primary)
	}
	if err != nil {
		return 0, err
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, nil
		}
	}
	return 0, fmt.Errorf("no SOA in the answer (%s)", dns.RcodeToString[r.Rcode])
}

// PrimaryAddr turns a node's primary ("ADDR[:PORT][@KEY]") into host:port.
func PrimaryAddr(p string) string {
	p, _, _ = strings.Cut(p, "@")
	if _, _, err := net.SplitHostPort(p); err == nil {
		return p
	}
	return net.JoinHostPort(strings.Trim(p, "[]"), "53")
}

// Behind is how many serials a is behind b (RFC 1982); 0 when not behind.
func Behind(a, b uint32) int64 {
	d := int32(b - a)
	if d <= 0 {
		return 0
	}
	return int64(d)
}

// Check builds the report from the nodes' last states. A secondary
// zone's reference is the highest serial any of its primaries (over all
// nodes) answers, so a node whose own primary is unreachable is still
// measured, and shows as stale when the zone moved on without it.
func Check(states map[string]live.State, soa SOA) Report {
	rep := Report{Checked: time.Now().UTC()}
	type answer struct {
		serial uint32
		err    error
	}
	primaries := map[string]map[string]bool{} // zone -> primary addresses
	highest := map[string]uint32{}            // zone -> highest served
	for _, st := range states {
		for _, z := range st.Zones {
			if h, ok := highest[z.Origin]; !ok || Behind(h, z.ServedSerial) > 0 {
				highest[z.Origin] = z.ServedSerial
			}
			for _, p := range st.Primaries[z.Origin] {
				if primaries[z.Origin] == nil {
					primaries[z.Origin] = map[string]bool{}
				}
				primaries[z.Origin][PrimaryAddr(p)] = true
			}
		}
	}
	asked := map[[2]string]answer{}
	ref := map[string]*uint32{}
	for zone, ps := range primaries {
		for p := range ps {
			s, err := soa(p, zone)
			asked[[2]string{p, zone}] = answer{s, err}
			if err == nil && (ref[zone] == nil || Behind(*ref[zone], s) > 0) {
				v := s
				ref[zone] = &v
			}
		}
	}
	for _, st := range states {
		if !st.Reached {
			continue
		}
		for _, z := range st.Zones {
			row := Row{Zone: z.Origin, Node: st.Name, Serial: z.ServedSerial}
			if ps := st.Primaries[z.Origin]; len(ps) > 0 {
				row.Primary = PrimaryAddr(ps[0])
				var errs []string
				for _, p := range ps {
					if a := asked[[2]string{PrimaryAddr(p), z.Origin}]; a.err != nil {
						errs = append(errs, "primary "+PrimaryAddr(p)+": "+a.err.Error())
					}
				}
				row.Error = strings.Join(errs, "; ")
				row.Reference = ref[z.Origin]
			} else {
				row.Primary = "fleet"
				s := highest[z.Origin]
				row.Reference = &s
			}
			if row.Reference != nil {
				row.Lag = Behind(row.Serial, *row.Reference)
				row.Stale = row.Lag > 0
			}
			if row.Stale {
				rep.Stale++
			}
			if row.Reference == nil {
				rep.Unknown++
			}
			rep.Rows = append(rep.Rows, row)
		}
	}
	sort.Slice(rep.Rows, func(i, j int) bool {
		a, b := rep.Rows[i], rep.Rows[j]
		if a.Stale != b.Stale {
			return a.Stale
		}
		if a.Zone != b.Zone {
			return a.Zone < b.Zone
		}
		return a.Node < b.Node
	})
	return rep
}

// ForNode returns the node's rows.
func (r Report) ForNode(name string) []Row {
	var out []Row
	for _, row := range r.Rows {
		if row.Node == name {
			out = append(out, row)
		}
	}
	return out
}
