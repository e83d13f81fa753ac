package tenant

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/firmware/dnstap"
	"github.com/shoestring-dns/shoestring/firmware/logring"
	"github.com/shoestring-dns/shoestring/firmware/secondary"
	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/zones"
)

// A tenant's control socket: the host listens on a Unix socket in the
// tenant's directory (DIR/NAME/control.sock, outside its root, root's
// only) and hands the listening descriptor to each of the tenant's
// processes, which serves its own management endpoints on it — its
// metrics, secondary zones (status, refresh), zones, overview and
// recent log lines — without opening a socket of its own (accepting is
// not binding). The host reaches them through its API
// (/api/v1/tenants/NAME/...) and scrapes the metrics for its /metrics.

// controlFile is the control socket, relative to the tenant's directory.
const controlFile = "control.sock"

// recentLogLines is how many log lines a tenant keeps for the host.
const recentLogLines = 300

// control is the host's end of a tenant's control socket.
type control struct {
	path   string
	ln     *net.UnixListener
	file   *os.File // the listening descriptor handed to the tenant
	client *http.Client
	proxy  *httputil.ReverseProxy
}

func listenControl(dir string) (*control, error) {
	path := filepath.Join(dir, controlFile)
	os.Remove(path) // left by a host that was killed
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	f, err := ln.File()
	if err != nil {
		ln.Close()
		return nil, err
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns: 2, IdleConnTimeout: 30 * time.Second,
		// A hung or restarting tenant does not hold a caller for long.
		ResponseHeaderTimeout: 10 * time.Second,
	}
	c := &control{path: path, ln: ln, file: f, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	target := &url.URL{Scheme: "http", Host: "tenant"}
	c.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path, r.Out.URL.RawPath = "/"+r.In.PathValue("rest"), ""
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "{\"error\":%q}\n", "tenant not answering on its control socket (starting or restarting?): "+err.Error())
		},
	}
	return c, nil
}

// get fetches path from the tenant.
func (c *control) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://tenant"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", path, resp.Status)
	}
	return b, err
}

func (c *control) Close() {
	if c == nil {
		return
	}
	c.file.Close()
	c.ln.Close() // removes the socket file
	c.client.CloseIdleConnections()
}

// Control is a handler that passes a request on to the tenant's own
// endpoints: the path after /api/v1/tenants/NAME (the request's "rest"
// path value, e.g. api/v1/secondary or metrics).
func (s *Supervisor) Control(name string) (http.Handler, error) {
	s.mu.Lock()
	t, ok := s.tenants[name]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("tenant %s: %w", name, ErrNotFound)
	}
	return t.ctl.proxy, nil
}

// Scrape reads every tenant's metrics in Prometheus' text format, by
// name; a tenant that does not answer (restarting) is left out, with
// the reason in errs.
func (s *Supervisor) Scrape(ctx context.Context) (texts map[string][]byte, errs map[string]error) {
	texts, errs = map[string][]byte{}, map[string]error{}
	s.mu.Lock()
	ctls := map[string]*control{}
	for n, t := range s.tenants {
		t.mu.Lock()
		running, state := t.proc != nil, t.state
		t.mu.Unlock()
		if !running {
			// Between two processes nobody accepts on its socket:
			// do not wait for one.
			errs[n] = fmt.Errorf("tenant %s: %s, no process", n, state)
			continue
		}
		ctls[n] = t.ctl
	}
	s.mu.Unlock()
	type res struct {
		name string
		b    []byte
		err  error
	}
	ch := make(chan res, len(ctls))
	for n, c := range ctls {
		go func() {
			b, err := c.get(ctx, "/metrics")
			ch <- res{n, b, err}
		}()
	}
	for range ctls {
		r := <-ch
		if r.err != nil {
			errs[r.name] = r.err
		} else {
			texts[r.name] = r.b
		}
	}
	return texts, errs
}

// startTap starts the tenant's dnstap output, nil without one. It dials
// the collector itself (connecting out needs no bind), or through its
// host when dial is not nil (its own network namespace).
func startTap(ctx context.Context, spec childSpec, srv *dnsserver.Server, dial *brokerDialer, log *slog.Logger) *dnstap.Tap {
	if spec.Dnstap == nil || spec.Dnstap.Target == "" {
		return nil
	}
	o := dnstap.Options{Target: spec.Dnstap.Target, Identity: spec.Name, Queue: spec.Dnstap.Queue, Log: log}
	if dial != nil {
		o.Dial = dial.Dial
	}
	tap := dnstap.New(o)
	srv.SetTap(tap)
	go tap.Run(ctx)
	return tap
}

// newSecondary builds the tenant's secondary service, nil without one.
// It dials primaries itself (in the host's network namespace; connecting
// out needs no bind), or through its host when dial is not nil (its own
// network namespace), from their source addresses too.
func newSecondary(spec childSpec, zs *zones.Zones, st *store.Store, dial *brokerDialer, log *slog.Logger) (*secondary.Service, error) {
	if spec.Secondary == nil {
		return nil, nil
	}
	opts := secondary.Options{State: st, Log: log}
	if dial != nil {
		opts.Dial, opts.DialFrom = dial.Dial, dial.DialFrom
	}
	sec, err := secondary.NewService(spec.Secondary, zs, opts)
	if err != nil {
		return nil, fmt.Errorf("secondary: %w", err)
	}
	return sec, nil
}

// ControlServer serves a tenant's own endpoints (package
// tenant/control) on its control socket until ctx ends.
type ControlServer func(ctx context.Context, ln net.Listener, src ControlSources) error

// ControlSources are what a tenant's endpoints read.
type ControlSources struct {
	Name      string
	DNS       *dnsserver.Server
	Zones     *zones.Zones
	Secondary *secondary.Service // nil without one
	Tap       *dnstap.Tap        // nil without one
	Logs      *logring.Ring
	Log       *slog.Logger
}
