package node

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/firmware/dnstap"
	"github.com/shoestring-dns/shoestring/firmware/logring"
	"github.com/shoestring-dns/shoestring/firmware/metrics"
	"github.com/shoestring-dns/shoestring/firmware/overlay"
)

// The management overlay: the tailnet (tsnet) the management API, metrics,
// status page and DNS for zone transfers listen on; access control by
// tailnet identity; metrics; dnstap; the public identity endpoint; and the
// recent log lines the status page shows. Without overlay.enabled (dev
// mode) management listens on loopback and every caller there is admin.

// recentLogLines is how many log lines the node keeps for the status page.
const recentLogLines = 300

// overlayState is the node's side of the overlay. Its parts are made on
// first use, since subsystems started before the overlay (the secondary
// service dialling a primary on the tailnet, say) may need them first.
type overlayState struct {
	logs *logring.Ring

	once    sync.Once
	metrics *metrics.Registry

	tnOnce  sync.Once
	tailnet *overlay.Tailnet // nil without overlay.enabled, or when it failed
	tnErr   error

	mu  sync.Mutex
	mux *http.ServeMux // the API, read in-process for the overview
	tap *dnstap.Tap
}

// keepLogs makes the node's logger keep recent lines for the status page.
func (n *Node) keepLogs(l *slog.Logger) *slog.Logger {
	n.ov.logs = logring.New(recentLogLines)
	return slog.New(n.ov.logs.Handler(l.Handler()))
}

// metricsRegistry returns the node's metrics, for subsystems to register
// collectors (Register) and count transfers (TransferDone).
func (n *Node) metricsRegistry() *metrics.Registry {
	n.ov.once.Do(func() {
		n.ov.metrics = metrics.New(metrics.Sources{
			DNS:      func() dnsserver.QueryMetrics { return n.dns.QueryMetrics() },
			DNSStats: func() *dnsserver.Stats { return n.dns.Stats() },
			Zones:    func() ([]api.ZoneInfo, error) { return api.ZoneList(n.zones) },
			Overview: n.Overview,
			Ready:    n.ready.Load,
		}, metrics.Build{Version: n.opts.Version})
	})
	return n.ov.metrics
}

// tailnet returns the node's tailnet membership, joining on first use; nil
// when the overlay is off or could not start (the node then serves DNS and
// keeps management on loopback rather than going dark).
func (n *Node) tailnet() *overlay.Tailnet {
	o := n.cfg.Overlay
	if !o.Enabled {
		return nil
	}
	n.ov.tnOnce.Do(func() {
		key := o.AuthKey
		if key == "" {
			if b, err := os.ReadFile(o.AuthKeyFileIn(n.cfg.DataDir)); err == nil {
				key = strings.TrimSpace(string(b))
			}
		}
		n.ov.tailnet, n.ov.tnErr = overlay.New(overlay.Options{
			Hostname:   o.Hostname,
			Dir:        o.StateDirIn(n.cfg.DataDir),
			ControlURL: o.ControlURL,
			AuthKey:    key,
			Tags:       o.Tags,
			Port:       uint16(o.Port),
			Log:        n.log,
		})
		if n.ov.tnErr != nil {
			n.log.Error("tailnet: cannot start; management stays on loopback", "err", n.ov.tnErr)
		}
	})
	return n.ov.tailnet
}

// overlayDial connects to addr over the tailnet when the address is on it
// (a tailnet IP or a tailnet name), and directly otherwise: primaries,
// secondaries and the dnstap collector are reached this way.
func (n *Node) overlayDial(ctx context.Context, network, addr string) (net.Conn, error) {
	if t := n.tailnet(); t != nil && onTailnet(addr) {
		return t.Dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// onTailnet reports whether addr is a tailnet address (100.64.0.0/10,
// fd7a:115c:a1e0::/48) or a name, which only the tailnet resolves here.
func onTailnet(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return true
	}
	a = a.Unmap()
	return netip.MustParsePrefix("100.64.0.0/10").Contains(a) || netip.MustParsePrefix("fd7a:115c:a1e0::/48").Contains(a)
}

// startOverlay joins the tailnet, serves DNS there, and starts dnstap and
// the identity endpoint. None of it may stop the node from serving DNS.
func (n *Node) startOverlay(ctx context.Context) error {
	o := n.cfg.Overlay
	n.metricsRegistry()
	if t := n.tailnet(); t != nil {
		go t.Run(ctx)
		context.AfterFunc(ctx, func() { t.Close() })
		if o.DNSOnTailnet() {
			go n.serveDNSOnTailnet(ctx, t)
		}
	}
	if o.Dnstap.Target != "" {
		tap := dnstap.New(dnstap.Options{
			Target:   o.Dnstap.Target,
			Dial:     n.overlayDial,
			Identity: n.cfg.Node.Name,
			Version:  n.opts.Version,
			Queue:    o.Dnstap.Queue,
			Log:      n.log,
		})
		n.ov.mu.Lock()
		n.ov.tap = tap
		n.ov.mu.Unlock()
		n.dns.SetTap(tap)
		go tap.Run(ctx)
	}
	for _, addr := range o.Identity.Listen {
		if err := n.serveIdentity(ctx, string(addr)); err != nil {
			n.log.Error("identity endpoint: not serving", "listen", addr, "err", err)
		}
	}
	return nil
}

// serveDNSOnTailnet answers DNS on the tailnet addresses (port 53): the
// way primaries NOTIFY this node and secondaries transfer from it. UDP
// needs the address, known once the node is up.
func (n *Node) serveDNSOnTailnet(ctx context.Context, t *overlay.Tailnet) {
	if err := t.WaitUp(ctx); err != nil {
		return
	}
	if ln, err := t.Listen("tcp", ":53"); err != nil {
		n.log.Error("tailnet: DNS over TCP not served", "err", err)
	} else {
		n.dns.ServeListener(ln)
	}
	v4, v6 := t.Addrs()
	for _, a := range []netip.Addr{v4, v6} {
		if !a.IsValid() {
			continue
		}
		pc, err := t.ListenPacket("udp", netip.AddrPortFrom(a, 53).String())
		if err != nil {
			n.log.Error("tailnet: DNS over UDP not served", "addr", a, "err", err)
			continue
		}
		n.dns.ServePacketConn(pc)
	}
	n.log.Info("tailnet: DNS served", "v4", v4, "v6", v6)
}

// overlayRoutes adds metrics, the overview and the identity document to
// the management API.
func (n *Node) overlayRoutes(mux *http.ServeMux) {
	n.ov.mu.Lock()
	n.ov.mux = mux
	n.ov.mu.Unlock()
	if n.cfg.Overlay.MetricsOn() {
		mux.Handle("GET /metrics", n.metricsRegistry().Handler())
	}
	mux.HandleFunc("GET /api/v1/overview", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, n.Overview())
	})
	mux.HandleFunc("GET /api/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		c, _ := api.CallerFrom(r.Context())
		writeJSON(w, c)
	})
	mux.HandleFunc("GET /api/v1/tailnet", func(w http.ResponseWriter, r *http.Request) {
		t := n.tailnet()
		if t == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(api.Error{Error: "this node is not on a tailnet (overlay.enabled is off)"})
			return
		}
		writeJSON(w, t.Status(r.Context()))
	})
	mux.HandleFunc("GET /api/v1/identity", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, n.identity())
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// managementListeners returns where the management API listens: the
// tailnet only, on a node that joins one; loopback otherwise.
func (n *Node) managementListeners(ctx context.Context) ([]net.Listener, error) {
	if t := n.tailnet(); t != nil {
		ln, err := t.Listen("tcp", fmt.Sprintf(":%d", n.cfg.Overlay.HTTPPort))
		if err != nil {
			return nil, fmt.Errorf("tailnet: %w", err)
		}
		return []net.Listener{ln}, nil
	}
	ln, err := net.Listen("tcp", string(n.cfg.Management.Listen))
	if err != nil {
		return nil, err
	}
	return []net.Listener{ln}, nil
}

// guard puts access control in front of the management API: tailnet
// identities mapped to roles by overlay.access, or — on loopback, where
// only the box itself can connect — admin for everyone.
func (n *Node) guard(h http.Handler) http.Handler {
	var who overlay.Resolver = overlay.Loopback{}
	if t := n.tailnet(); t != nil {
		who = t
	}
	a := n.cfg.Overlay.Access
	return overlay.Guard(h, who, overlay.Policy{Admin: a.Admin, Read: a.Read}, n.log)
}

// Overview gathers what the status page shows besides the zones. The
// routing and secondary parts are read through their own API endpoints,
// in-process, so the page shows exactly what `ctl` and the API show.
func (n *Node) Overview() api.Overview {
	o := api.Overview{Version: n.opts.Version}
	n.ov.mu.Lock()
	mux, tap := n.ov.mux, n.ov.tap
	n.ov.mu.Unlock()
	if mux != nil {
		var r api.Routing
		if getLocal(mux, "/api/v1/routing", &r) {
			o.Routing = &r
		}
		var s api.SecondaryStatus
		if getLocal(mux, "/api/v1/secondary", &s) {
			o.Secondary = &s
		}
	}
	if t := n.tailnet(); t != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st := t.Status(ctx)
		cancel()
		o.Tailnet = &st
	}
	if tap != nil {
		st := tap.Stats()
		o.Dnstap = &api.DnstapStatus{Target: st.Target, Connected: st.Connected, Sent: st.Sent, Dropped: st.Dropped + st.TooLarge, Error: st.Error}
	}
	for _, l := range n.ov.logs.Last(50) {
		o.Logs = append(o.Logs, api.LogLine{Time: l.Time, Level: l.Level.String(), Message: l.Message})
	}
	return o
}

// getLocal calls a GET endpoint of the API in-process and decodes it; it
// reports false when the node has no such endpoint (no such subsystem).
func getLocal(mux *http.ServeMux, path string, out any) bool {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if _, pattern := mux.Handler(req); pattern == "" {
		return false
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), out) == nil
}

// identity is the "which node did I reach?" document.
func (n *Node) identity() api.Identity {
	return api.Identity{
		Name:     n.cfg.Node.Name,
		Location: n.cfg.Node.Location,
		Version:  n.opts.Version,
		Serials:  n.dns.Serials(),
		Time:     time.Now().UTC(),
	}
}

// serveIdentity serves the identity document over plain HTTP on addr (a
// service address): GET only, small, time-bounded, the same for everyone.
// Nothing else of the node is reachable there.
func (n *Node) serveIdentity(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		writeJSON(w, n.identity())
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 4 << 10}
	go srv.Serve(ln)
	context.AfterFunc(ctx, func() { srv.Close() })
	n.log.Info("identity endpoint: serving", "listen", ln.Addr().String())
	return nil
}
