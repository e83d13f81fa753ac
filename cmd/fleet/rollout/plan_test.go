package rollout

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
)

func nodes(n int, regions ...string) []inventory.Node {
	var out []inventory.Node
	for i := 0; i < n; i++ {
		out = append(out, inventory.Node{Name: fmt.Sprintf("n%02d", i), Region: regions[i%len(regions)]})
	}
	return out
}

// TestPlanCanaryPerRegionDeterministicSpread: one canary per region; the
// same release gives the same plan; releases differ in their first nodes.
func TestPlanCanaryPerRegionDeterministicSpread(t *testing.T) {
	ns := nodes(30, "eu", "us", "ap")
	p := Plan("rel-a", ns, 3)
	if len(p[0]) != 3 {
		t.Fatalf("canaries %v: want one per region", p[0])
	}
	if !reflect.DeepEqual(p, Plan("rel-a", ns, 3)) {
		t.Fatal("the same release planned twice differs")
	}
	total := 0
	for _, w := range p {
		total += len(w)
	}
	if total != 30 || len(p) != 4 {
		t.Fatalf("plan %v: want 30 nodes in a canary wave and 3 waves", p)
	}
	differ := false
	for i := 0; i < 5 && !differ; i++ {
		differ = !reflect.DeepEqual(Plan(fmt.Sprintf("rel-%d", i), ns, 3)[0], p[0])
	}
	if !differ {
		t.Fatal("every release gets the same canaries")
	}
}

// TestPlanWaveLabels: labelled nodes go in label order after the canaries.
func TestPlanWaveLabels(t *testing.T) {
	ns := []inventory.Node{
		{Name: "a", Region: "eu", Wave: "2"}, {Name: "b", Region: "eu", Wave: "1"},
		{Name: "c", Region: "eu", Wave: "2"}, {Name: "d", Region: "eu", Wave: "1"},
	}
	p := Plan("r", ns, 5)
	if len(p) != 3 || len(p[0]) != 1 {
		t.Fatalf("plan %v", p)
	}
	for _, name := range p[1] {
		for _, n := range ns {
			if n.Name == name && n.Wave != "1" {
				t.Fatalf("wave 1 holds %s (label %s): %v", name, n.Wave, p)
			}
		}
	}
}

// TestInvariant: 3 announcing, min 2 → one out at a time; 10
// announcing, min 2 / half → five may be out; a withdrawn node counts as out.
func TestInvariant(t *testing.T) {
	mk := func(n int) []inventory.Node {
		var out []inventory.Node
		for i := 0; i < n; i++ {
			out = append(out, inventory.Node{Name: fmt.Sprintf("x%d", i), Region: "eu", Prefixes: []string{"192.0.2.0/24"}})
		}
		return out
	}
	three := mk(3)
	if ok, _ := MayTakeOut(three[0], three, map[string]bool{}, nil, 2, 0.5); !ok {
		t.Fatal("the first of three may not go")
	}
	if ok, why := MayTakeOut(three[1], three, map[string]bool{"x0": true}, nil, 2, 0.5); ok {
		t.Fatal("a second of three went while one is out")
	} else {
		t.Log(why)
	}
	ten := mk(10)
	out := map[string]bool{}
	for i := 0; i < 4; i++ {
		out[ten[i].Name] = true
	}
	if ok, _ := MayTakeOut(ten[4], ten, out, nil, 2, 0.5); !ok {
		t.Fatal("the fifth of ten may not go")
	}
	out["x4"] = true
	if ok, _ := MayTakeOut(ten[5], ten, out, nil, 2, 0.5); ok {
		t.Fatal("a sixth of ten went: fewer than half announcing")
	}
	// A node that reports the prefix withdrawn is out already.
	states := map[string]live.State{"x0": {Reached: true, Sessions: nil}}
	st := states["x0"]
	st.Prefixes = append(st.Prefixes, prefix("192.0.2.0/24", "withdrawn"))
	states["x0"] = st
	if ok, _ := MayTakeOut(three[1], three, map[string]bool{}, states, 2, 0.5); ok {
		t.Fatal("went while another node of three reports the prefix withdrawn")
	}
	if k := Keep(2, 2, 0.5); k != 2 {
		t.Fatalf("Keep(2) = %d", k)
	}
	// Two nodes, min 2: still one at a time, never stuck.
	two := mk(2)
	if ok, _ := MayTakeOut(two[0], two, map[string]bool{}, nil, 2, 0.5); !ok {
		t.Fatal("a prefix on two nodes could never be updated")
	}
}
