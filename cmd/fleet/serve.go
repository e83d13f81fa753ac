package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/catchment"
	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/leader"
	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
	"github.com/shoestring-dns/shoestring/cmd/fleet/serial"
	"github.com/shoestring-dns/shoestring/cmd/fleet/store"
	"github.com/shoestring-dns/shoestring/cmd/fleet/tailnet"
	"github.com/shoestring-dns/shoestring/cmd/fleet/web"
)

// serveMain runs the controller until SIGINT/SIGTERM. It only wires:
// the store, the poller, the rollout runner, the catchment runner and
// the web server.
func serveMain(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	path := fs.String("store", "fleet.db", "state file (bbolt; with -etcd only the default of -tailnet-dir derives from it)")
	bundles := fs.String("bundles", "", "where uploaded firmware bundles are kept (default: beside the store, STORE.bundles)")
	listen := fs.String("listen", "127.0.0.1:9080", "dashboard and API address")
	poll := fs.Duration("poll", 2*time.Second, "how often every node is polled")
	minAnn := fs.Int("min-announcing", 2, "of the nodes announcing a prefix in a region, at least this many stay announcing during a rollout")
	minFrac := fs.Float64("min-fraction", 0.5, "... or this fraction of them, whichever is more")
	waves := fs.Int("waves", 2, "waves after the canaries, for nodes without a wave label")
	gateTimeout := fs.Duration("gate-timeout", 60*time.Second, "a node whose gates still fail this long after it runs the new config halts the rollout")
	passRounds := fs.Int("pass-rounds", 3, "consecutive passing gate rounds for a node to pass")
	interval := fs.Duration("gate-interval", time.Second, "time between gate rounds")
	tsControl := fs.String("tailnet-control", "", "join the tailnet at this control server URL (empty: no tailnet; nodes are reached at their api address directly)")
	tsKey := fs.String("tailnet-authkey", "", "auth key for the first join")
	tsName := fs.String("tailnet-hostname", "shoestring-fleet", "the controller's name on the tailnet")
	tsDir := fs.String("tailnet-dir", "", "the controller's tailnet keys (default: beside the store)")
	tsTags := fs.String("tailnet-tags", "", "comma-separated tags the controller asks for (the nodes' overlay.access.admin must name one)")
	tsDiscover := fs.String("tailnet-discover", "tag:dns", "peers with this tag are nodes: unknown ones are added as unassigned (empty: every peer)")
	var ec store.EtcdConfig
	endpoints := fs.String("etcd", "", "comma-separated etcd endpoints: keep the state there, shared by every controller given the same -etcd and -etcd-prefix, one of which (the elected leader) acts (empty: bbolt in -store)")
	fs.StringVar(&ec.Prefix, "etcd-prefix", "/shoestring-fleet/", "key prefix of this fleet's state and election in etcd")
	fs.StringVar(&ec.CAFile, "etcd-ca", "", "CA file to check the etcd servers' certificates (TLS)")
	fs.StringVar(&ec.CertFile, "etcd-cert", "", "client certificate file for etcd (TLS)")
	fs.StringVar(&ec.KeyFile, "etcd-key", "", "client key file for etcd (TLS)")
	fs.StringVar(&ec.Username, "etcd-user", "", "etcd user (password from $SHOESTRING_FLEET_ETCD_PASSWORD)")
	ttl := fs.Duration("leader-ttl", 5*time.Second, "the leader's etcd lease: a standby takes over this long after the leader stops renewing it (whole seconds, at least 2s)")
	name := fs.String("name", "", "this controller's name, as the dashboard shows the leader (default HOSTNAME:PORT of -listen)")
	waveTargets := fs.String("catchment-targets", "", "file of target addresses (one a line): every rollout wave takes a catchment measurement before and after it (empty: none)")
	fs.Parse(args)

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var kv store.KV
	var elector *leader.Elector
	storeName := "bbolt " + *path
	if *endpoints != "" {
		if *ttl < 2*time.Second || *ttl%time.Second != 0 {
			return fmt.Errorf("-leader-ttl %s: want whole seconds, at least 2s (etcd's shortest lease)", *ttl)
		}
		ec.Endpoints = strings.Split(*endpoints, ",")
		ec.Password = os.Getenv("SHOESTRING_FLEET_ETCD_PASSWORD")
		ekv, err := store.OpenEtcd(ec)
		if err != nil {
			return err
		}
		if *name == "" {
			host, _ := os.Hostname()
			_, port, _ := net.SplitHostPort(*listen)
			*name = net.JoinHostPort(host, port)
		}
		elector = &leader.Elector{Client: ekv.Client(), Prefix: ekv.Prefix() + "leader", Name: *name, TTL: *ttl, Log: log}
		ekv.Fence = elector.Fence
		kv, storeName = ekv, "etcd "+*endpoints+" "+ekv.Prefix()
	} else {
		bkv, err := store.OpenBolt(*path)
		if err != nil {
			return err
		}
		kv = bkv
	}
	defer kv.Close()
	inv := inventory.Inventory{KV: kv}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	client := live.DefaultClient
	var member *tailnet.Member
	if *tsControl != "" {
		dir := *tsDir
		if dir == "" {
			dir = *path + ".tailnet"
		}
		var tags []string
		if *tsTags != "" {
			tags = strings.Split(*tsTags, ",")
		}
		if member, err = tailnet.Join(ctx, tailnet.Options{Hostname: *tsName, Dir: dir, ControlURL: *tsControl, AuthKey: *tsKey, Tags: tags, DiscoverTag: *tsDiscover, Log: log}); err != nil {
			return err
		}
		client = member.Client
	}
	poller := &live.Poller{Nodes: inv.All, Interval: *poll, Client: client}
	if *bundles == "" {
		*bundles = *path + ".bundles"
	}
	runner := &rollout.Runner{KV: kv, Poller: poller, Client: client, Log: log, Bundles: rollout.Bundles{Dir: *bundles}, Policy: rollout.Policy{
		MinAnnouncing: *minAnn, MinFraction: *minFrac, Waves: *waves,
		GateTimeout: *gateTimeout, PassRounds: *passRounds, Interval: *interval,
	}}
	catch := &catchment.Runner{KV: kv, Nodes: inv.All, Client: client, Log: log}
	if *waveTargets != "" {
		targets, err := catchment.ReadTargets(*waveTargets)
		if err != nil {
			return err
		}
		runner.Catchment = func(ctx context.Context, label string) (string, error) {
			m, err := catch.Run(ctx, catchment.Request{Targets: targets, Label: label})
			if m == nil {
				return "", err
			}
			return m.ID, err
		}
	}
	srv := &web.Server{KV: kv, Poller: poller, Runner: runner, SOA: serial.QuerySOA, Client: client, Catchment: catch, Log: log, Store: storeName}
	// What acts: rollouts and tailnet discovery (which writes the
	// inventory). With etcd only while elected; the poller (reads only)
	// runs on every controller so a standby's dashboard is live.
	act := func(ctx context.Context) {
		if member != nil {
			go member.Run(ctx, inv, *poll)
		}
		runner.Run(ctx)
	}
	if elector != nil {
		srv.Role = elector
		runner.MayAct = elector.Check
		elected := make(chan struct{})
		go func() {
			elector.Run(ctx, act)
			close(elected)
		}()
		// On the way out: the lease is revoked (a standby takes over at
		// once) before the store's client closes.
		defer func() {
			select {
			case <-elected:
			case <-time.After(5 * time.Second):
			}
		}()
		// Serve once the election has someone (this controller, or
		// another that leads), so that the first answers say who.
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if l, err := elector.Leader(ctx); err == nil && l != "" {
				break
			}
		}
	} else {
		go act(ctx)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	fmt.Fprintf(os.Stderr, "shoestring-fleet: dashboard http://%s/  (store %s)\n", ln.Addr(), storeName)
	go poller.Run(ctx)
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return hs.Shutdown(shut)
}
