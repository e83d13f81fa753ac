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

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
	"github.com/shoestring-dns/shoestring/cmd/fleet/serial"
	"github.com/shoestring-dns/shoestring/cmd/fleet/store"
	"github.com/shoestring-dns/shoestring/cmd/fleet/tailnet"
	"github.com/shoestring-dns/shoestring/cmd/fleet/web"
)

// serveMain runs the controller until SIGINT/SIGTERM. It only wires:
// the store, the poller, the rollout runner and the web server.
func serveMain(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	path := fs.String("store", "fleet.db", "state file (bbolt)")
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
	fs.Parse(args)

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	kv, err := store.OpenBolt(*path)
	if err != nil {
		return err
	}
	defer kv.Close()
	inv := inventory.Inventory{KV: kv}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
	srv := &web.Server{KV: kv, Poller: poller, Runner: runner, SOA: serial.QuerySOA, Client: client, Log: log}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	fmt.Fprintf(os.Stderr, "shoestring-fleet: dashboard http://%s/  (store %s)\n", ln.Addr(), *path)
	go poller.Run(ctx)
	go runner.Run(ctx)
	if member != nil {
		go member.Run(ctx, inv, *poll)
	}
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return hs.Shutdown(shut)
}
