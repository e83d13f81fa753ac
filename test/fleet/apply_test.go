package fleet

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/desired"
	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/web"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/reconfig"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestNodeAppliesWholeOrNothing drives one real node's PUT /api/v1/config:
// a document with a bad key is refused with its line and nothing changes;
// one that validates but cannot start (its DNS address is not on the
// box) is rolled back and the old config keeps answering; a good one
// runs, as generation 1. The controller's http_sd lists the node with its
// inventory labels.
func TestNodeAppliesWholeOrNothing(t *testing.T) {
	l := newLab(t, []inventory.Node{{Name: "solo", Site: "ams", Region: "eu", Country: "NL", Wave: "1"}})
	n := l.nodes[0]
	c := api.NewClient(n.API)
	good, err := desired.Render(template("v1.zone"), n)
	if err != nil {
		t.Fatal(err)
	}
	before := l.config(n)

	_, err = c.PutConfig([]byte(strings.Replace(string(good), "node:\n", "node:\n  colour: blue\n", 1)))
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Code != 422 || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad key: %v, want 422 naming line 2", err)
	}
	_, err = c.PutConfig([]byte(strings.Replace(string(good), "data_dir: ", "data_dir: /elsewhere", 1)))
	if !errors.As(err, &ae) || ae.Code != 422 || !strings.Contains(err.Error(), "data_dir") {
		t.Fatalf("moved data_dir: %v", err)
	}
	if cs := l.config(n); cs.Hash != before.Hash || cs.Last != nil {
		t.Fatalf("a refused document changed something: %+v", cs)
	}

	unbindable := strings.Replace(string(good), n.DNS, "192.0.2.99:53", 1)
	a, err := c.PutConfig([]byte(unbindable))
	if err != nil {
		t.Fatal(err)
	}
	cs := waitAttempt(t, c, a.Generation)
	if cs.Last.State != reconfig.StateRolledBack || !strings.Contains(cs.Last.Error, "192.0.2.99") || cs.Hash != before.Hash {
		t.Fatalf("unbindable address: %+v", cs)
	}
	if got := answer(t, n); got != "REFUSED" { // the dev config serves only example.test
		t.Fatalf("after the rollback the old config does not answer as before: %s", got)
	}

	// The good one through `shoestring ctl apply`, which waits for it.
	file := filepath.Join(t.TempDir(), "good.yaml")
	os.WriteFile(file, good, 0o644)
	if out, err := exec.Command(testenv.Binary(t), "ctl", "-api", n.API, "apply", file).CombinedOutput(); err != nil || !strings.Contains(string(out), "applied: generation 1") {
		t.Fatalf("ctl apply: %v\n%s", err, out)
	}
	cs = l.config(n)
	if cs.Last.State != reconfig.StateApplied || cs.Generation != 1 || cs.Hash != desired.Hash(good) || cs.Document != string(good) {
		t.Fatalf("good document: generation %d, %+v", cs.Generation, cs.Last)
	}
	if got := answer(t, n); got != "192.0.2.10" {
		t.Fatalf("new config answers %s", got)
	}

	var sd []web.Target
	l.call("GET", "/sd", nil, &sd)
	if len(sd) != 1 || sd[0].Targets[0] != n.API || sd[0].Labels["site"] != "ams" || sd[0].Labels["region"] != "eu" || sd[0].Labels["country"] != "NL" || sd[0].Labels["wave"] != "1" || sd[0].Labels["node"] != "solo" {
		t.Fatalf("http_sd: %+v", sd)
	}
}

// waitAttempt waits for the attempt of generation gen to finish.
func waitAttempt(t *testing.T, c *api.Client, gen uint64) api.ConfigStatus {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		cs, err := c.Config()
		if err == nil && cs.Last != nil && cs.Last.Generation == gen && cs.Last.State != reconfig.StateApplying {
			return cs
		}
		if time.Now().After(deadline) {
			t.Fatalf("attempt %d did not finish: %+v %v", gen, cs.Last, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
