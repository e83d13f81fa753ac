package interop

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// node is a Shoestring node run from a config file, as on a real box.
type node struct {
	*proc
	name    string
	DNS     string // 127.0.0.1:port
	API     *api.Client
	apiAddr string
	dir     string
	// extra is more top-level config (YAML, unindented), e.g. zones:.
	extra string
}

// startNode runs `shoestring run` with the given secondary section
// (YAML, unindented).
func startNode(t *testing.T, name, secondary string) *node {
	t.Helper()
	n := newNode(t, name)
	n.start(t, secondary)
	return n
}

// newNode picks a node's ports without starting it, for peers that must
// be told its address first.
func newNode(t *testing.T, name string) *node {
	t.Helper()
	n := &node{name: name, dir: mkdir(t, name, "data")}
	n.DNS = fmt.Sprintf("127.0.0.1:%d", refserver.Port(t))
	n.apiAddr = fmt.Sprintf("127.0.0.1:%d", refserver.Port(t))
	n.API = api.NewClient(n.apiAddr)
	return n
}

func (n *node) start(t *testing.T, secondary string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "node:\n  name: %s\ndata_dir: %s\ndns:\n  listen: [%q]\nmanagement:\n  listen: %s\n",
		n.name, filepath.Join(n.dir, "data"), n.DNS, n.apiAddr)
	b.WriteString(n.extra)
	if secondary != "" {
		b.WriteString("secondary:\n")
		for _, l := range strings.Split(strings.TrimRight(secondary, "\n"), "\n") {
			b.WriteString("  " + l + "\n")
		}
	}
	cf := filepath.Join(n.dir, "node.yaml")
	writeFile(t, cf, b.String())
	n.proc = startProc(t, n.name, testenv.Binary(t), "run", "-config", cf)
	deadline := time.Now().Add(20 * time.Second)
	for n.API.Health() != nil {
		if n.Exited() || time.Now().After(deadline) {
			t.Fatalf("%s did not come up:\n%s\n--- config ---\n%s", n.name, n.Tail(40), b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// restart stops the node and starts it again on the same data and ports
// with a new secondary section.
func (n *node) restart(t *testing.T, secondary string) {
	t.Helper()
	n.Stop(stopGrace)
	n.start(t, secondary)
}

func (n *node) zone(t *testing.T, origin string) api.SecondaryZone {
	t.Helper()
	z, err := n.API.SecondaryZone(origin)
	if err != nil {
		t.Fatalf("%s: secondary zone %s: %v", n.name, origin, err)
	}
	return z
}

// waitZone waits until the zone's transfer state satisfies cond.
func (n *node) waitZone(t *testing.T, origin string, timeout time.Duration, what string, cond func(api.SecondaryZone) bool) api.SecondaryZone {
	t.Helper()
	var z api.SecondaryZone
	waitFor(t, timeout, fmt.Sprintf("%s: %s %s", n.name, origin, what), func() (bool, string) {
		var err error
		z, err = n.API.SecondaryZone(origin)
		if err != nil {
			return false, err.Error()
		}
		return cond(z), fmt.Sprintf("%+v", z)
	})
	return z
}

// zoneText is a small zone with short SOA timers (refresh, retry,
// expire) so that the timer-driven tests take seconds.
func zoneText(origin string, serial uint32, refresh, retry, expire int, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 60\n@ SOA ns1 hostmaster %d %d %d %d 60\n@ NS ns1\nns1 A 192.0.2.1\n", origin, serial, refresh, retry, expire)
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	return b.String()
}
