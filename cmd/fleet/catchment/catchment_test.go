package catchment

import (
	"testing"

	node "github.com/shoestring-dns/shoestring/firmware/catchment"
)

func TestMergeAndDiff(t *testing.T) {
	targets := []string{"10.1.1.2", "10.1.1.3", "10.1.2.2", "2001:db8:1:2::1", "10.9.9.9"}
	replies := []node.Reply{
		{Target: "10.1.1.2", Sender: "a", Receiver: "a"},
		{Target: "10.1.1.2", Sender: "b", Receiver: "a"}, // the same target twice counts once
		{Target: "10.1.1.3", Sender: "a", Receiver: "b"},
		{Target: "10.1.2.2", Sender: "a", Receiver: "b"},
		{Target: "2001:db8:1:2::1", Sender: "a", Receiver: "b"},
	}
	rows, answered, unanswered := Merge(targets, replies, map[string]string{"a": "ams", "b": "fra"})
	if answered != 4 || len(unanswered) != 1 || unanswered[0] != "10.9.9.9" {
		t.Fatalf("answered %d, unanswered %v", answered, unanswered)
	}
	want := []Row{
		{Prefix: "10.1.1.0/24", Node: "a", Site: "ams", Targets: 1, Split: map[string]int{"a": 1, "b": 1}},
		{Prefix: "10.1.2.0/24", Node: "b", Site: "fra", Targets: 1},
		{Prefix: "2001:db8:1::/48", Node: "b", Site: "fra", Targets: 1},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v", rows)
	}
	for i := range want {
		g, w := rows[i], want[i]
		if g.Prefix != w.Prefix || g.Node != w.Node || g.Site != w.Site || g.Targets != w.Targets || len(g.Split) != len(w.Split) {
			t.Errorf("row %d: %+v, want %+v", i, g, w)
		}
	}
	after := &Measurement{ID: "2", Map: []Row{{Prefix: "10.1.1.0/24", Node: "b"}, {Prefix: "10.1.2.0/24", Node: "b"}, {Prefix: "10.3.0.0/24", Node: "a"}}}
	d := Diff(&Measurement{ID: "1", Map: rows}, after)
	if d.Same != 1 || len(d.Changed) != 3 || d.Moved["a → b"] != 1 || d.Moved["b → (none)"] != 1 || d.Moved["(none) → a"] != 1 {
		t.Fatalf("diff %+v", d)
	}
}
