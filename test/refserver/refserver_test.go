package refserver

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testZone = `$ORIGIN example.test.
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.2
`

// TestKnot starts Knot on a zone given as text, from a plain config and
// from an editable one, and changes the zone through knotc.
func TestKnot(t *testing.T) {
	for _, editable := range []bool{false, true} {
		k := StartKnot(t, KnotConfig{Zones: []Zone{{Origin: "example.test.", Text: testZone}}, Journal: true, Editable: editable})
		if editable {
			k.Ctl(t, []string{"zone-begin", "example.test."}, []string{"zone-set", "example.test.", "new", "300", "A", "192.0.2.3"},
				[]string{"zone-commit", "example.test."})
		}
		k.Stop(5 * time.Second)
		if !k.Exited() {
			t.Fatal("knot still running after Stop")
		}
	}
}

// TestNSDAndBIND start NSD and BIND on a zone, reload them with a new
// version, and restart NSD.
func TestNSDAndBIND(t *testing.T) {
	z := []Zone{{Origin: "example.test.", Text: testZone}}
	nsd := StartNSD(t, NSDConfig{Zones: z})
	bind := StartBIND(t, BINDConfig{Zones: z})
	for _, s := range []*Server{nsd, bind} {
		v2 := strings.Replace(testZone, " 1 3600", " 2 3600", 1)
		if err := WriteFile(s.ZoneFile("example.test."), v2); err != nil {
			t.Fatal(err)
		}
		s.Reload(t)
		deadline := time.Now().Add(10 * time.Second)
		for {
			r, err := AskSOA(s.Addr, "example.test.")
			if err == nil && r.Answer[0].(*dns.SOA).Serial == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: serial 2 not served after reload: %v %v\n%s", s.Name, r, err, s.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	nsd.Restart(t, "example.test.")
}

// TestFreePorts hands out distinct ports.
func TestFreePorts(t *testing.T) {
	ps, err := Ports(3)
	if err != nil {
		t.Fatal(err)
	}
	if ps[0] == ps[1] || ps[1] == ps[2] || ps[0] == ps[2] {
		t.Fatalf("ports not distinct: %v", ps)
	}
}

// TestOptions starts Knot and NSD with the options the differential
// suite and the benchmark use, which they must accept.
func TestOptions(t *testing.T) {
	z := []Zone{{Origin: "example.test.", Text: testZone}}
	StartKnot(t, KnotConfig{Zones: z, Identity: "opt-test", Workers: 1, SemanticChecks: true, RefuseTransfers: true})
	StartNSD(t, NSDConfig{Zones: z, Identity: "opt-test", RRLOff: true, MinimalResponses: true, RefuseTransfers: true})
}
