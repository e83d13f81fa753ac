package bgp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwhited/corebgp"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// bgpSeeds reads test/testdata/fuzz/<target>: whole BGP messages (marker,
// length, type) as a peer sent them; seeds returns their bodies of the
// given message type.
func bgpSeeds(f *testing.F, target string, typ byte) [][]byte {
	dir := filepath.Join("..", "..", "test", "testdata", "fuzz", target)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.Fatalf("seed corpus: %v", err)
	}
	var out [][]byte
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		for len(b) >= 19 {
			n := int(binary.BigEndian.Uint16(b[16:]))
			if n < 19 || n > len(b) {
				break
			}
			if b[18] == typ {
				out = append(out, b[19:n])
			}
			b = b[n:]
		}
	}
	return out
}

// slotsInUse counts the occupied slots of a prefixSet, which must be its
// length.
func slotsInUse(s *prefixSet) int {
	n := 0
	for _, k := range s.slots {
		if k != 0 {
			n++
		}
	}
	return n
}

// FuzzUpdate feeds UPDATE bodies, as a neighbour sends them, to the
// received-route counting (the only decoding of a peer's UPDATE that is
// ours; corebgp frames the message). No panic; a body either resets the
// session with an UPDATE error NOTIFICATION or is applied; applying the
// same UPDATE again changes nothing (an implicit replace never counts
// twice); the count is bounded by the bytes received (a prefix takes at
// least one); the packed set stays consistent. The second input, an
// OPEN's capabilities (code, length, value triples), goes to
// remoteFamilies, which always settles on families we know.
func FuzzUpdate(f *testing.F) {
	sp := sessionParams{localASN: 65001, nextHop4: netip.MustParseAddr("10.0.0.2"), nextHop6: netip.MustParseAddr("fd79::2")}
	v4 := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("0.0.0.0/0")}
	v6 := []netip.Prefix{netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("2001:db8::1/128")}
	caps := []byte{1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1, 65, 4, 0, 0, 0xfd, 0xe9}
	rt := &ribRoute{}
	for _, fam := range []familySet{famIPv4, famIPv6} {
		ps := v4
		if fam == famIPv6 {
			ps = v6
		}
		if msgs, err := sp.announce(fam, rt, ps); err == nil {
			for _, m := range msgs {
				f.Add(m, caps)
			}
		}
		if msgs, err := withdraw(fam, ps); err == nil {
			for _, m := range msgs {
				f.Add(m, caps)
			}
		}
	}
	f.Add([]byte{0, 0, 0, 0, 33, 1, 2, 3, 4, 5}, []byte{})
	// The capabilities of the captured OPENs (optional parameters of
	// type 2).
	for _, open := range bgpSeeds(f, "FuzzUpdate", gbgp.BGP_MSG_OPEN) {
		if len(open) < 10 || len(open) < 10+int(open[9]) {
			continue
		}
		var c []byte
		for p := open[10 : 10+int(open[9])]; len(p) >= 2 && len(p) >= 2+int(p[1]); p = p[2+int(p[1]):] {
			if p[0] == 2 {
				c = append(c, p[2:2+int(p[1])]...)
			}
		}
		caps = c
	}
	for _, b := range bgpSeeds(f, "FuzzUpdate", gbgp.BGP_MSG_UPDATE) {
		f.Add(b, caps)
	}
	f.Fuzz(func(t *testing.T, body, capBytes []byte) {
		r := newReceived()
		n1 := r.update(body)
		if n1 != nil {
			if n1.Code != corebgp.NOTIF_CODE_UPDATE_MESSAGE_ERR {
				t.Fatalf("NOTIFICATION %v for an UPDATE", n1)
			}
		}
		c1 := r.count()
		if c1 > len(body) {
			t.Fatalf("%d prefixes counted from %d bytes", c1, len(body))
		}
		if slotsInUse(&r.short) != r.short.len() {
			t.Fatalf("prefix set: %d slots used, length %d", slotsInUse(&r.short), r.short.len())
		}
		n2 := r.update(body)
		if (n1 == nil) != (n2 == nil) {
			t.Fatalf("the same UPDATE: %v, then %v", n1, n2)
		}
		if n1 == nil && r.count() != c1 {
			t.Fatalf("the same UPDATE twice: count %d, then %d", c1, r.count())
		}

		var cs []corebgp.Capability
		for b := capBytes; len(b) >= 2; {
			l := int(b[1])
			if len(b) < 2+l {
				break
			}
			cs = append(cs, corebgp.Capability{Code: b[0], Value: b[2 : 2+l]})
			b = b[2+l:]
		}
		if fams := remoteFamilies(cs); fams&^(famIPv4|famIPv6) != 0 {
			t.Fatalf("families %v from %x", fams, capBytes)
		}
	})
}
