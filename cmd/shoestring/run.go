package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/node"
)

// runMain runs a node from a config file. When the file is broken and the
// data directory holds the last config that worked, the node keeps
// serving with that one and says so loudly: a box two continents away must
// not go dark over a typo.
func runMain(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	path := fs.String("config", "", "node config file (YAML; reference: firmware/config/README.md)")
	data := fs.String("data", "", "data directory, overriding data_dir (also where the last good config is kept)")
	check := fs.Bool("check", false, "only check the config file and exit")
	fs.Parse(args)
	if *path == "" {
		return errors.New("run: -config FILE is required")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := config.Load(*path)
	if *check {
		if err != nil {
			return err
		}
		fmt.Println("config OK")
		return nil
	}
	if err != nil {
		dir := *data
		if dir == "" {
			dir = config.DefaultDataDir
		}
		last, lerr := node.LastGoodConfig(dir)
		if lerr != nil {
			return fmt.Errorf("%w (and no last good config: %v)", err, lerr)
		}
		log.Error("config rejected; running with the last config that worked", "err", err)
		cfg = last
	}
	if *data != "" {
		cfg.DataDir = *data
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return node.New(node.Options{Config: cfg, Logger: log, Version: version}).Run(ctx)
}
