package bgp

import (
	"net/netip"
	"testing"

	"github.com/jwhited/corebgp"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

func TestReceivedCounting(t *testing.T) {
	sp := sessionParams{localASN: 65001, nextHop4: netip.MustParseAddr("10.0.0.2"), nextHop6: netip.MustParseAddr("fd79::2")}
	v4 := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("0.0.0.0/0")}
	v6 := []netip.Prefix{netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("2001:db8::1/128")}
	r := newReceived()
	feed := func(msgs [][]byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if n := r.update(m); n != nil {
				t.Fatalf("update refused: %v", n)
			}
		}
	}
	rt := mustRIB(t, Route{Prefix: v4[0]}).routes[v4[0]]
	feed(sp.announce(famIPv4, rt, v4))
	feed(sp.announce(famIPv6, rt, v6))
	if c := r.count(); c != 4 {
		t.Fatalf("count %d, want 4", c)
	}
	// Re-announcing (an implicit replace) must not count twice.
	feed(sp.announce(famIPv4, rt, v4))
	feed(sp.announce(famIPv6, rt, v6))
	if c := r.count(); c != 4 {
		t.Fatalf("count after re-announce %d, want 4", c)
	}
	feed(withdraw(famIPv4, v4[:1]))
	feed(withdraw(famIPv6, v6))
	if c := r.count(); c != 1 {
		t.Fatalf("count after withdraw %d, want 1", c)
	}
	// Withdrawing what was never announced changes nothing.
	feed(withdraw(famIPv6, v6))
	if c := r.count(); c != 1 {
		t.Fatalf("count %d, want 1", c)
	}
}

func TestReceivedMalformed(t *testing.T) {
	r := newReceived()
	// NLRI claims /33 for IPv4.
	body := []byte{0, 0, 0, 0, 33, 1, 2, 3, 4, 5}
	if n := r.update(body); n == nil || n.Code != corebgp.NOTIF_CODE_UPDATE_MESSAGE_ERR {
		t.Fatalf("malformed NLRI: %v", n)
	}
	// Announcement without ORIGIN or AS_PATH: treat-as-withdraw, no reset.
	nh, _ := gbgp.NewPathAttributeNextHop(netip.MustParseAddr("10.0.0.2"))
	pfx, _ := gbgp.NewIPAddrPrefix(netip.MustParsePrefix("203.0.113.0/24"))
	msg := gbgp.NewBGPUpdateMessage(nil, []gbgp.PathAttributeInterface{nh}, []gbgp.PathNLRI{{NLRI: pfx}})
	b, err := msg.Body.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	r.insert(netip.MustParsePrefix("203.0.113.0/24"))
	if n := r.update(b); n != nil {
		t.Fatalf("treat-as-withdraw reset the session: %v", n)
	}
	if r.count() != 0 {
		t.Fatalf("count %d after treat-as-withdraw, want 0", r.count())
	}
}

func TestPackPrefixDistinct(t *testing.T) {
	seen := map[uint64]netip.Prefix{}
	for _, s := range []string{"0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/16", "255.255.255.255/32",
		"::/0", "2001:db8::/32", "2001:db8::/33", "a00::/8", "a00::/24", "ffff:ffff:ffff:ff00::/56"} {
		p := netip.MustParsePrefix(s)
		k, ok := packPrefix(p)
		if !ok || k == 0 {
			t.Fatalf("%v packed to %x, %v", p, k, ok)
		}
		if q, dup := seen[k]; dup {
			t.Fatalf("%v and %v pack to the same key", p, q)
		}
		seen[k] = p
	}
	if _, ok := packPrefix(netip.MustParsePrefix("2001:db8::/64")); ok {
		t.Fatal("/64 packed into 64 bits")
	}
}
