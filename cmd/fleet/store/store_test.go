package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/refserver"
)

// contract is what every backend must do, whatever it is.
func contract(t *testing.T, a, b KV) {
	t.Helper()
	if _, err := a.Get("nodes", "ams1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of an absent key: %v, want ErrNotFound", err)
	}
	if _, _, err := a.GetVersion("nodes", "ams1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get version of an absent key: %v, want ErrNotFound", err)
	}
	if err := a.Put("nodes", "ams1", []byte(`{"name":"ams1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Put("nodes", "fra1", []byte(`{"name":"fra1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Put("groups", "edge", []byte(`x`)); err != nil {
		t.Fatal(err)
	}
	// The other handle (another controller, for etcd) sees the writes.
	if v, err := b.Get("nodes", "ams1"); err != nil || string(v) != `{"name":"ams1"}` {
		t.Fatalf("get: %q %v", v, err)
	}
	m, err := b.List("nodes")
	if err != nil || len(m) != 2 || string(m["fra1"]) != `{"name":"fra1"}` {
		t.Fatalf("list nodes: %v %v, want ams1 and fra1 only", m, err)
	}
	if m, _ := b.List("none"); len(m) != 0 {
		t.Fatalf("list of an empty bucket: %v", m)
	}
	if err := a.Delete("nodes", "fra1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get("nodes", "fra1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}

	// Versions: create-only with 0, then compare-and-swap. Two writers
	// that read the same version: the first wins, the second conflicts.
	v1, err := a.PutIfVersion("rollouts", "r1", []byte("step 1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutIfVersion("rollouts", "r1", []byte("again"), 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("create over an existing key: %v, want ErrConflict", err)
	}
	val, va, err := a.GetVersion("rollouts", "r1")
	if err != nil || va != v1 || string(val) != "step 1" {
		t.Fatalf("get version: %q %d %v, want %q %d", val, va, err, "step 1", v1)
	}
	_, vb, _ := b.GetVersion("rollouts", "r1")
	v2, err := a.PutIfVersion("rollouts", "r1", []byte("step 2 by a"), va)
	if err != nil {
		t.Fatal(err)
	}
	if v2 == v1 {
		t.Fatalf("the version did not change with a write: %d", v2)
	}
	if _, err := b.PutIfVersion("rollouts", "r1", []byte("step 2 by b"), vb); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale write: %v, want ErrConflict", err)
	}
	if v, _ := b.Get("rollouts", "r1"); string(v) != "step 2 by a" {
		t.Fatalf("after the conflict: %q, want a's step", v)
	}
	// An unconditional Put changes the version too.
	if err := b.Put("rollouts", "r1", []byte("put")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutIfVersion("rollouts", "r1", []byte("step 3"), v2); !errors.Is(err, ErrConflict) {
		t.Fatalf("write over a Put since: %v, want ErrConflict", err)
	}
}

func TestBolt(t *testing.T) {
	db, err := OpenBolt(filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	contract(t, db, db)
	// Versions are not in a bucket anyone lists.
	if m, _ := db.List(versionsBucket); len(m) == 0 {
		t.Fatal("no versions kept")
	}
	if m, _ := db.List("rollouts"); len(m) != 1 {
		t.Fatalf("rollouts: %v", m)
	}
}

// TestEtcd runs the contract against a real etcd with two clients (two
// controllers), then the fence: writes succeed only while the fence's
// key exists with the fence's creation revision.
func TestEtcd(t *testing.T) {
	srv := refserver.StartEtcd(t)
	open := func() *Etcd {
		e, err := OpenEtcd(EtcdConfig{Endpoints: []string{srv.Endpoint}, Prefix: "/test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	a, b := open(), open()
	contract(t, a, b)

	// Keys live under the prefix, by bucket.
	ctx := context.Background()
	resp, err := a.Client().Get(ctx, "/test/kv/nodes/ams1")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("ams1 is not at /test/kv/nodes/ams1: %v %v", resp, err)
	}

	// The fence: a's writes hold only while "leader" is a's.
	put, err := a.Client().Put(ctx, "/test/leader/a", "a")
	if err != nil {
		t.Fatal(err)
	}
	rev := put.Header.Revision
	a.Fence = func() (string, int64, bool) { return "/test/leader/a", rev, true }
	b.Fence = func() (string, int64, bool) { return "", 0, false }
	if err := a.Put("groups", "edge", []byte("by the leader")); err != nil {
		t.Fatalf("the leader's write: %v", err)
	}
	_, ver, _ := a.GetVersion("rollouts", "r1")
	if _, err := b.PutIfVersion("rollouts", "r1", []byte("by a standby"), ver); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a standby's write: %v, want ErrNotLeader", err)
	}
	if err := b.Delete("groups", "edge"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a standby's delete: %v, want ErrNotLeader", err)
	}
	// A conflict inside the fence is a conflict, not a lost leadership.
	if _, err := a.PutIfVersion("rollouts", "r1", []byte("stale"), ver-1); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale write by the leader: %v, want ErrConflict", err)
	}
	// The leader key goes (its lease expired): a, which has not noticed
	// and still thinks it leads, writes nothing.
	if _, err := a.Client().Delete(ctx, "/test/leader/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutIfVersion("rollouts", "r1", []byte("after the end"), ver); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("write after the leader key went: %v, want ErrNotLeader", err)
	}
	// Nor once the key is back under another revision (a new term).
	if _, err := a.Client().Put(ctx, "/test/leader/a", "a"); err != nil {
		t.Fatal(err)
	}
	if err := a.Put("groups", "edge", []byte("old term")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("write with an old term's revision: %v, want ErrNotLeader", err)
	}
	if v, _ := b.Get("rollouts", "r1"); string(v) != "put" {
		t.Fatalf("r1 is %q: a write got through the fence", v)
	}
}

// TestEtcdUnreachable: a controller pointed at no etcd says so.
func TestEtcdUnreachable(t *testing.T) {
	ports, err := refserver.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenEtcd(EtcdConfig{Endpoints: []string{"127.0.0.1:" + strconv.Itoa(ports[0])}, Timeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("opened an etcd that is not there")
	}
	t.Log(err)
}

// TestEtcdTLS: etcd serving clients over TLS and requiring a client
// certificate: the controller gets in with -etcd-ca, -etcd-cert and
// -etcd-key, and is refused (clearly) without its certificate.
func TestEtcdTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, dir, "ca", nil, nil)
	newCert(t, dir, "server", ca, caKey)
	newCert(t, dir, "client", ca, caKey)
	f := func(name string) string { return filepath.Join(dir, name) }
	pair, err := tls.LoadX509KeyPair(f("client.crt"), f("client.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv := refserver.StartEtcdTLS(t, &refserver.EtcdTLS{CertFile: f("server.crt"), KeyFile: f("server.key"), ClientCA: f("ca.crt"),
		Client: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}})
	e, err := OpenEtcd(EtcdConfig{Endpoints: []string{srv.Endpoint}, CAFile: f("ca.crt"), CertFile: f("client.crt"), KeyFile: f("client.key")})
	if err != nil {
		t.Fatalf("over TLS with a client certificate: %v", err)
	}
	defer e.Close()
	if err := e.Put("nodes", "ams1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v, err := e.Get("nodes", "ams1"); err != nil || string(v) != "x" {
		t.Fatalf("get over TLS: %q %v", v, err)
	}
	if _, err := OpenEtcd(EtcdConfig{Endpoints: []string{srv.Endpoint}, CAFile: f("ca.crt"), Timeout: time.Second}); err == nil {
		t.Fatal("got in without a client certificate")
	}
	if _, err := OpenEtcd(EtcdConfig{Endpoints: []string{srv.Endpoint}, CAFile: f("server.key")}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a CA file without a certificate: %v", err)
	}
}

// newCert writes name.crt and name.key into dir: a CA when parent is
// nil, else a certificate for 127.0.0.1 signed by parent.
func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		signer, signerKey = parent, parentKey
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestEtcdAuth: etcd with authentication on: the controller gets in with
// -etcd-user and its password, and not with a wrong one.
func TestEtcdAuth(t *testing.T) {
	srv := refserver.StartEtcd(t)
	admin, err := OpenEtcd(EtcdConfig{Endpoints: []string{srv.Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := context.Background()
	cli := admin.Client()
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("enabling etcd auth: %v", err)
		}
	}
	e, err := OpenEtcd(EtcdConfig{Endpoints: []string{srv.Endpoint}, Username: "root", Password: "rootpw"})
	if err != nil {
		t.Fatalf("with the password: %v", err)
	}
	defer e.Close()
	if err := e.Put("nodes", "ams1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenEtcd(EtcdConfig{Endpoints: []string{srv.Endpoint}, Username: "root", Password: "wrong", Timeout: time.Second}); err == nil {
		t.Fatal("got in with a wrong password")
	}
	if _, err := OpenEtcd(EtcdConfig{Endpoints: []string{srv.Endpoint}, Timeout: time.Second}); err == nil {
		t.Fatal("got in without a user")
	}
}
