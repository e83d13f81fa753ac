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
	"syscall"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
	"github.com/shoestring-dns/shoestring/cmd/fleet/serial"
	"github.com/shoestring-dns/shoestring/cmd/fleet/store"
	"github.com/shoestring-dns/shoestring/cmd/fleet/web"
)

// serveMain runs the controller until SIGINT/SIGTERM. It only wires:
// the store, the poller, the rollout runner and the web server.
func serveMain(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	path := fs.String("store", "fleet.db", "state file (bbolt)")
	listen := fs.String("listen", "127.0.0.1:9080", "dashboard and API address")
	poll := fs.Duration("poll", 2*time.Second, "how often every node is polled")
	minAnn := fs.Int("min-announcing", 2, "of the nodes announcing a prefix in a region, at least this many stay announcing during a rollout")
	minFrac := fs.Float64("min-fraction", 0.5, "... or this fraction of them, whichever is more")
	waves := fs.Int("waves", 2, "waves after the canaries, for nodes without a wave label")
	gateTimeout := fs.Duration("gate-timeout", 60*time.Second, "a node whose gates still fail this long after it runs the new config halts the rollout")
	passRounds := fs.Int("pass-rounds", 3, "consecutive passing gate rounds for a node to pass")
	interval := fs.Duration("gate-interval", time.Second, "time between gate rounds")
	fs.Parse(args)

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	kv, err := store.OpenBolt(*path)
	if err != nil {
		return err
	}
	defer kv.Close()
	inv := inventory.Inventory{KV: kv}
	poller := &live.Poller{Nodes: inv.All, Interval: *poll}
	runner := &rollout.Runner{KV: kv, Poller: poller, Log: log, Policy: rollout.Policy{
		MinAnnouncing: *minAnn, MinFraction: *minFrac, Waves: *waves,
		GateTimeout: *gateTimeout, PassRounds: *passRounds, Interval: *interval,
	}}
	srv := &web.Server{KV: kv, Poller: poller, Runner: runner, SOA: serial.QuerySOA, Log: log}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	fmt.Fprintf(os.Stderr, "shoestring-fleet: dashboard http://%s/  (store %s)\n", ln.Addr(), *path)
	go poller.Run(ctx)
	go runner.Run(ctx)
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return hs.Shutdown(shut)
}
