// Package serial is the fleet's SOA serial check: for every zone, the
// serial each node serves against its primary's (asked directly, SOA
// over UDP then TCP), the lag, and which nodes are stale. A zone with no
// primary (loaded from a file or the API) is checked against the highest
// serial any node serves. A primary the controller cannot reach makes
// that zone's rows unknown, never fresh.
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

// Check builds the report from the nodes' last states.
func Check(states map[string]live.State, soa SOA) Report {
	rep := Report{Checked: time.Now().UTC()}
	type ref struct {
		serial uint32
		err    error
	}
	asked := map[[2]string]ref{}
	highest := map[string]uint32{}
	for _, st := range states {
		for _, z := range st.Zones {
			if h, ok := highest[z.Origin]; !ok || Behind(h, z.ServedSerial) > 0 {
				highest[z.Origin] = z.ServedSerial
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
				key := [2]string{row.Primary, z.Origin}
				r, ok := asked[key]
				if !ok {
					s, err := soa(row.Primary, z.Origin)
					r = ref{s, err}
					asked[key] = r
				}
				if r.err != nil {
					row.Error = "primary: " + r.err.Error()
				} else {
					s := r.serial
					row.Reference = &s
				}
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
