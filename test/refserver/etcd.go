package refserver

import (
	"crypto/tls"
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
	Endpoint string // client URL, http(s)://127.0.0.1:PORT
}

// EtcdTLS serves etcd's clients over TLS with CertFile and KeyFile
// (issued for 127.0.0.1); with ClientCA set, only clients with a
// certificate it signed get in. Client is what the health check uses.
type EtcdTLS struct {
	CertFile, KeyFile, ClientCA string
	Client                      *tls.Config
}

// StartEtcd runs a one-member etcd for a test, with its data in a
// directory of its own, on two free loopback ports, and waits until it is
// healthy; it skips without etcd (fails under CI=true), fails with etcd's
// log, and stops it when the test ends.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	return StartEtcdTLS(t, nil)
}

// StartEtcdTLS is StartEtcd serving clients over TLS (nil: plain).
func StartEtcdTLS(t testing.TB, tc *EtcdTLS) *Etcd {
	t.Helper()
	bin := testenv.RequireTool(t, "etcd")
	ports, err := Ports(2)
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	client := fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	argv := []string{bin,
		"--name", "test", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test=" + peer, "--initial-cluster-state", "new",
		"--log-level", "warn", "--logger", "zap",
	}
	hc := &http.Client{Timeout: time.Second}
	if tc != nil {
		argv = append(argv, "--cert-file", tc.CertFile, "--key-file", tc.KeyFile)
		if tc.ClientCA != "" {
			argv = append(argv, "--client-cert-auth", "--trusted-ca-file", tc.ClientCA)
		}
		hc.Transport = &http.Transport{TLSClientConfig: tc.Client}
	}
	p := Run(t, Command{Name: "etcd", Argv: argv})
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
