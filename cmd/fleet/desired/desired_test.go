package desired

import (
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
)

// TestRender: fields and vars fill the template; a missing var and a
// rendered document the node would refuse are errors naming the node and
// what is wrong.
func TestRender(t *testing.T) {
	n := inventory.Node{Name: "ams1", API: "127.0.0.1:8053", Vars: map[string]string{"listen": "127.0.0.1:5353"}}
	doc, err := Render("node:\n  name: {{.Node.Name}}\ndns:\n  listen: [\"{{.Vars.listen}}\"]\n", n)
	if err != nil || !strings.Contains(string(doc), "name: ams1") {
		t.Fatalf("%s %v", doc, err)
	}
	if Hash(doc) != Hash(doc) || len(Hash(doc)) != 64 {
		t.Fatal("hash")
	}
	if _, err := Render("node:\n  name: {{.Vars.nope}}\n", n); err == nil || !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "ams1") {
		t.Fatalf("missing var: %v", err)
	}
	_, err = Render("node:\n  name: x\n  colour: blue\n", n)
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "ams1") {
		t.Fatalf("bad document: %v", err)
	}
}
