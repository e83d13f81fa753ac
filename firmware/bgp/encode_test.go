package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

func u32(v uint32) *uint32 { return &v }

// parseUpdate decodes an UPDATE body with gobgp's parser, an implementation
// independent of the encoder's packing.
func parseUpdate(t *testing.T, body []byte) *gbgp.BGPUpdate {
	t.Helper()
	h := &gbgp.BGPHeader{Marker: make([]byte, 16), Len: uint16(19 + len(body)), Type: gbgp.BGP_MSG_UPDATE}
	m, err := gbgp.ParseBGPBody(h, body)
	if err != nil {
		t.Fatalf("gobgp cannot parse our UPDATE: %v", err)
	}
	return m.Body.(*gbgp.BGPUpdate)
}

func mustRIB(t *testing.T, routes ...Route) *rib {
	t.Helper()
	r, err := newRIB(routes)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAnnounceIPv4EBGP(t *testing.T) {
	r := mustRIB(t, Route{
		Prefix:           netip.MustParsePrefix("198.51.100.0/24"),
		Communities:      []uint32{Community(65000, 100), Community(64999, 1)},
		LargeCommunities: []LargeCommunity{{65000, 1, 2}},
		Prepend:          2,
		MED:              u32(50),
		LocalPref:        u32(200), // must not appear on eBGP
		GracefulShutdown: true,
	})
	sp := sessionParams{localASN: 4200000001, nextHop4: netip.MustParseAddr("10.0.0.1")}
	rt := r.routes[netip.MustParsePrefix("198.51.100.0/24")]
	msgs, err := sp.announce(famIPv4, rt, r.sorted)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("announce: %d msgs, %v", len(msgs), err)
	}
	u := parseUpdate(t, msgs[0])
	if len(u.NLRI) != 1 || u.NLRI[0].NLRI.String() != "198.51.100.0/24" {
		t.Fatalf("NLRI = %v", u.NLRI)
	}
	var types []gbgp.BGPAttrType
	for _, a := range u.PathAttributes {
		types = append(types, a.GetType())
		switch a := a.(type) {
		case *gbgp.PathAttributeAsPath:
			if got := a.String(); got != "{AsPath: 4200000001 4200000001 4200000001}" {
				t.Errorf("AS path %q", got)
			}
		case *gbgp.PathAttributeNextHop:
			if a.Value.String() != "10.0.0.1" {
				t.Errorf("next hop %v", a.Value)
			}
		case *gbgp.PathAttributeMultiExitDisc:
			if a.Value != 50 {
				t.Errorf("MED %d", a.Value)
			}
		case *gbgp.PathAttributeCommunities:
			want := []uint32{Community(64999, 1), Community(65000, 100), GracefulShutdownCommunity}
			if !slices.Equal(a.Value, want) {
				t.Errorf("communities %x, want %x", a.Value, want)
			}
		case *gbgp.PathAttributeLargeCommunities:
			if len(a.Values) != 1 || a.Values[0].String() != "65000:1:2" {
				t.Errorf("large communities %v", a.Values)
			}
		case *gbgp.PathAttributeLocalPref:
			t.Errorf("LOCAL_PREF on an eBGP session")
		}
	}
	want := []gbgp.BGPAttrType{1, 2, 3, 4, 8, 32}
	if !slices.Equal(types, want) {
		t.Errorf("attribute types %v, want %v (in type-code order)", types, want)
	}
}

func TestAnnounceIPv6IBGP(t *testing.T) {
	r := mustRIB(t,
		Route{Prefix: netip.MustParsePrefix("2001:db8:53::/48"), LocalPref: u32(200), Prepend: 3},
		Route{Prefix: netip.MustParsePrefix("2001:db8:54::/48"), GracefulShutdown: true},
		Route{Prefix: netip.MustParsePrefix("2001:db8:55::/48")},
	)
	sp := sessionParams{localASN: 65000, ibgp: true, nextHop6: netip.MustParseAddr("fd79::1")}
	for pfx, wantLP := range map[string]uint32{"2001:db8:53::/48": 200, "2001:db8:54::/48": 0, "2001:db8:55::/48": DefaultLocalPref} {
		p := netip.MustParsePrefix(pfx)
		msgs, err := sp.announce(famIPv6, r.routes[p], []netip.Prefix{p})
		if err != nil {
			t.Fatal(err)
		}
		u := parseUpdate(t, msgs[0])
		if len(u.NLRI) != 0 {
			t.Errorf("IPv6 in the IPv4 NLRI field")
		}
		var lp *uint32
		for _, a := range u.PathAttributes {
			switch a := a.(type) {
			case *gbgp.PathAttributeAsPath:
				if len(a.Value) != 0 {
					t.Errorf("%s: iBGP AS path %v, want empty (no prepend inside the AS)", pfx, a)
				}
			case *gbgp.PathAttributeLocalPref:
				lp = &a.Value
			case *gbgp.PathAttributeMpReachNLRI:
				if a.Nexthop.String() != "fd79::1" || len(a.Value) != 1 || a.Value[0].NLRI.String() != pfx {
					t.Errorf("MP_REACH %v", a)
				}
			case *gbgp.PathAttributeNextHop:
				t.Errorf("NEXT_HOP attribute on an IPv6 route")
			}
		}
		if lp == nil || *lp != wantLP {
			t.Errorf("%s: LOCAL_PREF %v, want %d", pfx, lp, wantLP)
		}
	}
}

// Many prefixes sharing attributes are packed into few UPDATEs, none over
// the 4096-byte limit, and none lost.
func TestPackingAndWithdraw(t *testing.T) {
	for _, fam := range []familySet{famIPv4, famIPv6} {
		var routes []Route
		for i := range 3000 {
			var p netip.Prefix
			if fam == famIPv4 {
				p = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
			} else {
				p = netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/48", i))
			}
			routes = append(routes, Route{Prefix: p, Communities: []uint32{1, 2, 3}})
		}
		r := mustRIB(t, routes...)
		sp := sessionParams{localASN: 65000, nextHop4: netip.MustParseAddr("10.0.0.1"), nextHop6: netip.MustParseAddr("fd79::1")}
		msgs, err := sp.announce(fam, r.routes[r.sorted[0]], r.sorted)
		if err != nil {
			t.Fatal(err)
		}
		wd, err := withdraw(fam, r.sorted)
		if err != nil {
			t.Fatal(err)
		}
		for name, set := range map[string][][]byte{"announce": msgs, "withdraw": wd} {
			var got []string
			for _, m := range set {
				if len(m)+19 > 4096 {
					t.Fatalf("%v %s: message of %d bytes", fam, name, len(m)+19)
				}
				u := parseUpdate(t, m)
				for _, n := range append(u.NLRI, u.WithdrawnRoutes...) {
					got = append(got, n.NLRI.String())
				}
				for _, a := range u.PathAttributes {
					switch a := a.(type) {
					case *gbgp.PathAttributeMpReachNLRI:
						for _, n := range a.Value {
							got = append(got, n.NLRI.String())
						}
					case *gbgp.PathAttributeMpUnreachNLRI:
						for _, n := range a.Value {
							got = append(got, n.NLRI.String())
						}
					}
				}
			}
			if len(got) != 3000 || len(set) > 20 {
				t.Errorf("%v %s: %d prefixes in %d messages", fam, name, len(got), len(set))
			}
		}
	}
}

func TestNewRIBRejects(t *testing.T) {
	p := netip.MustParsePrefix("192.0.2.0/24")
	for name, routes := range map[string][]Route{
		"duplicate":   {{Prefix: p}, {Prefix: netip.MustParsePrefix("192.0.2.1/24")}},
		"invalid":     {{}},
		"mapped":      {{Prefix: netip.MustParsePrefix("::ffff:192.0.2.0/120")}},
		"prepend":     {{Prefix: p, Prepend: 17}},
		"communities": {{Prefix: p, Communities: make([]uint32, 1000)}},
	} {
		if name == "communities" {
			for i := range routes[0].Communities {
				routes[0].Communities[i] = uint32(i)
			}
		}
		if _, err := newRIB(routes); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	r := mustRIB(t, Route{Prefix: netip.MustParsePrefix("192.0.2.77/24")})
	if r.sorted[0].String() != "192.0.2.0/24" {
		t.Errorf("prefix not masked: %v", r.sorted[0])
	}
}
