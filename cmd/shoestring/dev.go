package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/node"
	"github.com/shoestring-dns/shoestring/firmware/reconfig"
)

//go:embed example.zone
var exampleZone []byte

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// devMain runs a node in dev mode: everything on loopback, data under
// ./var/dev, no config file. It is what `make run` starts.
func devMain(args []string) error {
	fs := flag.NewFlagSet("dev", flag.ExitOnError)
	data := fs.String("data", "./var/dev", "data directory (the bbolt store lives here)")
	httpAddr := fs.String("http", config.DefaultManagement, "management API and status page address")
	nsid := fs.String("nsid", "", "NSID and CHAOS id.server identity (default: host name)")
	ver := fs.String("version-bind", "", "answer for CHAOS version.bind (default: hidden)")
	rrl := fs.Int("rrl", 0, "response rate limiting: replies per second per client /24 and response class (0: off); slip 2, window 15s")
	var listen, zones, secondaries, catalogs, tsigKeys listFlag
	fs.Var(&listen, "listen", "DNS address host:port, UDP and TCP (repeatable; default 127.0.0.1:5353 and [::1]:5353)")
	fs.Var(&zones, "zone", "ORIGIN=FILE: import a zone file at start (repeatable)")
	fs.Var(&secondaries, "secondary", "ORIGIN=ADDR[:PORT][@KEYNAME]: a secondary zone transferred from that primary (repeatable)")
	fs.Var(&catalogs, "catalog", "ORIGIN=ADDR[:PORT][@KEYNAME]: a catalog zone (RFC 9432) whose members are transferred from that primary (repeatable)")
	fs.Var(&tsigKeys, "tsig", "KEYNAME=ALG:BASE64SECRET: a TSIG key for -secondary and -catalog (repeatable)")
	fs.Parse(args)
	if fs.NArg() > 0 {
		return fmt.Errorf("dev: unexpected arguments %q", fs.Args())
	}

	cfg := &config.Config{DataDir: *data}
	cfg.Node.Name = *nsid
	cfg.DNS.Version = *ver
	cfg.Management.Listen = config.HostPort(*httpAddr)
	if *rrl > 0 {
		cfg.DNS.RRL.Enabled = true
		cfg.DNS.RRL.ResponsesPerSecond = *rrl
	}
	if len(listen) == 0 {
		listen = listFlag{"127.0.0.1:5353"}
		if ipv6Loopback() {
			listen = append(listen, "[::1]:5353")
		}
	}
	for _, l := range listen {
		cfg.DNS.Listen = append(cfg.DNS.Listen, config.HostPort(l))
	}
	for _, z := range zones {
		origin, file, ok := strings.Cut(z, "=")
		if !ok || origin == "" || file == "" {
			return fmt.Errorf("dev: -zone %q: want ORIGIN=FILE", z)
		}
		cfg.Zones = append(cfg.Zones, config.Zone{Origin: origin, File: file})
	}
	if err := devSecondary(cfg, secondaries, catalogs, tsigKeys); err != nil {
		return err
	}
	cfg.SetDefaults()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	doc, err := cfg.Marshal()
	if err != nil {
		return err
	}
	var sup *reconfig.Supervisor
	sup = reconfig.New(reconfig.Options{Document: doc, Config: cfg, Log: log, New: func(cfg *config.Config, ready func()) reconfig.Runtime {
		return devNode(cfg, log, sup, ready)
	}})
	return sup.Run(ctx)
}

// devNode is one run of the dev node under cfg (the flags' document, or
// one applied through PUT /api/v1/config).
func devNode(cfg *config.Config, log *slog.Logger, sup *reconfig.Supervisor, ready func()) *node.Node {
	return node.New(node.Options{
		Reconfig: sup,
		Version:  version,
		Config:   cfg,
		Logger:   log,
		Example:  &node.ExampleZone{Origin: "example.test.", Text: exampleZone},
		OnReady: func(dnsAddrs []string, http string) {
			host, port := "127.0.0.1", "5353"
			if len(dnsAddrs) > 0 {
				if i := strings.LastIndexByte(dnsAddrs[0], ':'); i > 0 {
					host, port = strings.Trim(dnsAddrs[0][:i], "[]"), dnsAddrs[0][i+1:]
				}
			}
			ready()
			fmt.Fprintf(os.Stderr, `
Shoestring dev node is up. Data: %s
Try:
  dig @%[2]s -p %[3]s www.example.test
  dig @%[2]s -p %[3]s +dnssec +nsid anything.users.example.test TXT
  dig @%[2]s -p %[3]s id.server CH TXT
  curl http://%[4]s/api/v1/zones        (status page: http://%[4]s/)
  %[5]s ctl -api %[4]s zones
Ctrl-C stops it.

`, cfg.DataDir, host, port, http, os.Args[0])
		},
	})
}

// ipv6Loopback reports whether ::1 can be bound (containers may lack it).
func ipv6Loopback() bool {
	b, err := os.ReadFile("/proc/net/if_inet6")
	return err == nil && strings.Contains(string(b), "00000000000000000000000000000001")
}
