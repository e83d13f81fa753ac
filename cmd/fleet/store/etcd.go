package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdConfig is how the controller reaches etcd.
type EtcdConfig struct {
	Endpoints []string // host:port or URLs
	Prefix    string   // every key of this fleet lives under it (default /shoestring-fleet/)
	// TLS: a CA file to check the servers with, and a client certificate
	// and key (all optional; a CA alone is server-checked TLS).
	CAFile, CertFile, KeyFile string
	Username, Password        string
	Timeout                   time.Duration // each request (default 5 s)
}

// Fence says which controller may write: the leader's election key and
// its creation revision. ok false: this controller is not the leader.
type Fence func() (key string, rev int64, ok bool)

// Etcd is KV in etcd, for several controllers sharing one state. With
// Fence set, every write is a transaction that succeeds only while the
// fence's key still has the fence's creation revision: a controller
// that lost its leadership (its lease expired and its election key went
// with it) cannot write, even before it noticed.
type Etcd struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
	Fence   Fence
}

// OpenEtcd connects to etcd and checks that it answers.
func OpenEtcd(c EtcdConfig) (*Etcd, error) {
	if len(c.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if c.Prefix == "" {
		c.Prefix = "/shoestring-fleet/"
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	tlsc, err := etcdTLS(c)
	if err != nil {
		return nil, err
	}
	lc := zap.NewProductionConfig() // the client's own log: errors only
	lc.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: c.Timeout,
		TLS:         tlsc,
		Username:    c.Username,
		Password:    c.Password,
		LogConfig:   &lc,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(c.Endpoints, ","), err)
	}
	e := &Etcd{cli: cli, prefix: c.Prefix, timeout: c.Timeout}
	ctx, cancel := e.ctx()
	defer cancel()
	if _, err := cli.Get(ctx, c.Prefix, clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd %s: not answering within %s: %w", strings.Join(c.Endpoints, ","), c.Timeout, err)
	}
	return e, nil
}

func etcdTLS(c EtcdConfig) (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd CA: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA %s: no PEM certificate in it", c.CAFile)
		}
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// Client is the etcd client (the leader election runs on it too).
func (e *Etcd) Client() *clientv3.Client { return e.cli }

// Prefix is the key prefix of this fleet's state.
func (e *Etcd) Prefix() string { return e.prefix }

func (e *Etcd) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.timeout)
}

func (e *Etcd) key(bucket, key string) string { return e.prefix + "kv/" + bucket + "/" + key }

func (e *Etcd) Get(bucket, key string) ([]byte, error) {
	v, _, err := e.GetVersion(bucket, key)
	return v, err
}

// GetVersion's version is the key's etcd mod revision.
func (e *Etcd) GetVersion(bucket, key string) ([]byte, int64, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	resp, err := e.cli.Get(ctx, e.key(bucket, key))
	if err != nil {
		return nil, 0, fmt.Errorf("etcd get %s/%s: %w", bucket, key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, ErrNotFound
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, nil
}

func (e *Etcd) List(bucket string) (map[string][]byte, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	pfx := e.key(bucket, "")
	resp, err := e.cli.Get(ctx, pfx, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd list %s: %w", bucket, err)
	}
	out := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), pfx)] = kv.Value
	}
	return out, nil
}

// write runs op (a Put, a Delete, or a nested transaction) inside the
// fence: ErrNotLeader when the fence's key is gone or was recreated.
func (e *Etcd) write(what string, op clientv3.Op) (*clientv3.TxnResponse, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	txn := e.cli.Txn(ctx)
	if e.Fence != nil {
		key, rev, ok := e.Fence()
		if !ok {
			return nil, fmt.Errorf("etcd %s: %w", what, ErrNotLeader)
		}
		txn = txn.If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev))
	}
	resp, err := txn.Then(op).Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", what, err)
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("etcd %s: %w (its leadership ended)", what, ErrNotLeader)
	}
	return resp, nil
}

func (e *Etcd) Put(bucket, key string, val []byte) error {
	_, err := e.write("put "+bucket+"/"+key, clientv3.OpPut(e.key(bucket, key), string(val)))
	return err
}

func (e *Etcd) Delete(bucket, key string) error {
	_, err := e.write("delete "+bucket+"/"+key, clientv3.OpDelete(e.key(bucket, key)))
	return err
}

// PutIfVersion compares the key's mod revision in a transaction nested
// in the fence's: a write by another controller since version was read,
// and a write by a controller that is no longer the leader, both fail.
func (e *Etcd) PutIfVersion(bucket, key string, val []byte, version int64) (int64, error) {
	k := e.key(bucket, key)
	what := "put " + bucket + "/" + key
	resp, err := e.write(what, clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", version)},
		[]clientv3.Op{clientv3.OpPut(k, string(val))}, nil))
	if err != nil {
		return 0, err
	}
	if !resp.Responses[0].GetResponseTxn().Succeeded {
		return 0, fmt.Errorf("etcd %s: %w", what, ErrConflict)
	}
	return resp.Header.Revision, nil
}

func (e *Etcd) Close() error { return e.cli.Close() }
