package refserver

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

// Etcd is a one-member etcd (Debian's etcd-server) on 127.0.0.1.
type Etcd struct {
	*Proc
	Endpoint string // client URL, http://127.0.0.1:PORT
}

// StartEtcd runs a one-member etcd for a test, with its data in a
// directory of its own, on two free loopback ports, and waits until it is
// healthy; it skips without etcd (fails under CI=true), fails with etcd's
// log, and stops it when the test ends.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	bin := testenv.RequireTool(t, "etcd")
	ports, err := Ports(2)
	if err != nil {
		t.Fatal(err)
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	p := Run(t, Command{Name: "etcd", Argv: []string{bin,
		"--name", "test", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test=" + peer, "--initial-cluster-state", "new",
		"--log-level", "warn", "--logger", "zap",
	}})
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := hc.Get(client + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return &Etcd{Proc: p, Endpoint: client}
			}
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("etcd did not become healthy at %s:\n%s", client, p.Tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
