package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/host"
)

// hostMain runs a multi-tenant host from a config file (the node
// document's network, bgp, health, management and tenants sections; see
// firmware/tenant/README.md).
func hostMain(args []string) error {
	fs := flag.NewFlagSet("host", flag.ExitOnError)
	path := fs.String("config", "", "host config file (YAML; reference: firmware/config/README.md, tenants:)")
	fs.Parse(args)
	if *path == "" {
		return errors.New("host: -config FILE is required")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return host.Run(ctx, host.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
}
