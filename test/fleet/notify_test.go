package fleet

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/serial"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// TestZoneAddedServedEverywhere: six nodes take the catalog cat.test.
// from a real Knot primary. A zone added to Knot's catalog (knotc
// conf-set, as an operator adds one) is served by every node within 2 s
// of the catalog's NOTIFY, and the controller's serial check then
// reports it current on every node against the primary.
func TestZoneAddedServedEverywhere(t *testing.T) {
	const cat = "cat.test."
	member := func(origin, a string) refserver.Zone {
		return refserver.Zone{Origin: origin, Member: true,
			Text: fmt.Sprintf("$TTL 60\n@ IN SOA ns1 h 1 3600 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A %s\n", a)}
	}
	k := refserver.StartKnot(t, refserver.KnotConfig{Catalog: cat, Editable: true, Zones: []refserver.Zone{member("m1.test.", "192.0.2.11")}})
	var specs []inventory.Node
	args := map[string][]string{}
	for i := range 6 {
		name := fmt.Sprintf("z%d", i+1)
		specs = append(specs, inventory.Node{Name: name, Region: "eu"})
		args[name] = []string{"-catalog", cat + "=" + k.Addr}
	}
	l := newLabWith(t, specs, args)
	for _, n := range l.nodes {
		waitA(t, n.DNS, "www.m1.test.", "192.0.2.11", 15*time.Second)
	}

	// Add m2.test. to the catalog on Knot; once Knot serves the new
	// catalog, NOTIFY every node of it.
	// Knot answers no queries for a catalog it generates; a transfer
	// shows its serial.
	catSerial := func() uint32 {
		m := new(dns.Msg)
		m.SetAxfr(cat)
		env, err := new(dns.Transfer).In(m, k.Addr)
		if err != nil {
			t.Fatalf("catalog AXFR from Knot: %v", err)
		}
		var s uint32
		for e := range env {
			if e.Error != nil {
				t.Fatalf("catalog AXFR from Knot: %v", e.Error)
			}
			if len(e.RR) > 0 {
				if soa, ok := e.RR[0].(*dns.SOA); ok && s == 0 {
					s = soa.Serial
				}
			}
		}
		return s
	}
	before := catSerial()
	m2 := member("m2.test.", "192.0.2.22")
	if err := os.WriteFile(k.ZoneFile(m2.Origin), []byte(m2.Text), 0o644); err != nil {
		t.Fatal(err)
	}
	z := "zone[" + m2.Origin + "]"
	k.Ctl(t, []string{"conf-begin"}, []string{"conf-set", z}, []string{"conf-set", z + ".file", k.ZoneFile(m2.Origin)},
		[]string{"conf-set", z + ".catalog-role", "member"}, []string{"conf-set", z + ".catalog-zone", cat}, []string{"conf-commit"})
	for deadline := time.Now().Add(10 * time.Second); catSerial() == before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Knot's catalog serial did not move after the member was added")
		}
	}
	notify := new(dns.Msg)
	notify.SetNotify(cat)
	start := time.Now()
	for _, n := range l.nodes {
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(notify, n.DNS)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("NOTIFY to %s: %v %v", n.Name, r, err)
		}
	}
	var wg sync.WaitGroup
	took := make([]time.Duration, len(l.nodes))
	for i, n := range l.nodes {
		wg.Go(func() {
			waitA(t, n.DNS, "www.m2.test.", "192.0.2.22", 10*time.Second)
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	all := time.Since(start)
	t.Logf("zone added at the primary: served on all 6 nodes %s after the NOTIFY (per node %v)", all.Round(time.Millisecond), took)
	if all > 2*time.Second {
		t.Errorf("served everywhere %s after the NOTIFY; the bar is 2 s", all)
	}

	// The serial check: current on every node, against Knot.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var rep serial.Report
		l.call("GET", "/api/serials", nil, &rep)
		current := 0
		for _, r := range rep.Rows {
			if r.Zone == m2.Origin && !r.Stale && r.Reference != nil && *r.Reference == 1 && r.Serial == 1 && r.Primary == k.Addr {
				current++
			}
		}
		if current == len(l.nodes) {
			t.Logf("serial check: %s current on all %d nodes %s after the NOTIFY", m2.Origin, current, time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serial check: %s current on %d of %d nodes: %+v", m2.Origin, current, len(l.nodes), rep.Rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitA waits until addr answers name A with want.
func waitA(t *testing.T, addr, name, want string, within time.Duration) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(within)
	for {
		r, _, err := c.Exchange(m, addr)
		if err == nil && len(r.Answer) > 0 {
			if a, ok := r.Answer[0].(*dns.A); ok && a.A.String() == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %s A not %s within %s: %v %v", addr, name, want, within, r, err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
