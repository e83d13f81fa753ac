package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
)

// GoBGPPath is one path in gobgpd's RIB, as `gobgp global rib -j` shows
// it.
type GoBGPPath struct {
	Neighbor    netip.Addr // the node it came from
	NextHop     netip.Addr
	ASPath      []uint32
	Communities []string // "65053:100"
	Large       []string // "65053:1:2"
}

// GoBGPRIB reads gobgpd's RIB, both families, by prefix.
func (l *Lab) GoBGPRIB() (map[netip.Prefix][]GoBGPPath, error) {
	rib := map[netip.Prefix][]GoBGPPath{}
	for _, fam := range []string{"ipv4", "ipv6"} {
		out, err := l.Gobgp("global", "rib", "-a", fam, "-j")
		if err != nil {
			return nil, fmt.Errorf("gobgp global rib -a %s: %v: %s", fam, err, out)
		}
		var raw map[string][]struct {
			NeighborIP string            `json:"neighbor-ip"`
			Attrs      []json.RawMessage `json:"attrs"`
		}
		if err := json.Unmarshal([]byte(out), &raw); err != nil {
			return nil, fmt.Errorf("gobgp rib JSON: %v: %s", err, out)
		}
		for pfx, paths := range raw {
			p, err := netip.ParsePrefix(pfx)
			if err != nil {
				return nil, err
			}
			for _, rp := range paths {
				var gp GoBGPPath
				gp.Neighbor, _ = netip.ParseAddr(rp.NeighborIP)
				for _, a := range rp.Attrs {
					if err := gp.attr(a); err != nil {
						return nil, err
					}
				}
				rib[p] = append(rib[p], gp)
			}
			slices.SortFunc(rib[p], func(a, b GoBGPPath) int { return a.Neighbor.Compare(b.Neighbor) })
		}
	}
	return rib, nil
}

func (gp *GoBGPPath) attr(raw json.RawMessage) error {
	var a struct {
		Type        int                       `json:"type"`
		Nexthop     string                    `json:"nexthop"`
		AsPaths     []struct{ ASNs []uint32 } `json:"as_paths"`
		Communities []uint32                  `json:"communities"`
		Value       json.RawMessage           `json:"value"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return err
	}
	switch a.Type {
	case 2:
		for _, seg := range a.AsPaths {
			gp.ASPath = append(gp.ASPath, seg.ASNs...)
		}
	case 3, 14:
		gp.NextHop, _ = netip.ParseAddr(a.Nexthop)
	case 8:
		for _, c := range a.Communities {
			gp.Communities = append(gp.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
		}
	case 32:
		var lcs []struct{ ASN, LocalData1, LocalData2 uint32 }
		if err := json.Unmarshal(a.Value, &lcs); err != nil {
			return fmt.Errorf("large communities %s: %v", a.Value, err)
		}
		for _, lc := range lcs {
			gp.Large = append(gp.Large, fmt.Sprintf("%d:%d:%d", lc.ASN, lc.LocalData1, lc.LocalData2))
		}
	}
	return nil
}
