package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/node"
	"github.com/shoestring-dns/shoestring/firmware/reconfig"
	"github.com/shoestring-dns/shoestring/ota/agent"
	"github.com/shoestring-dns/shoestring/ota/slot"
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
	slots := fs.String("slots", "", "binary A/B slots directory (shoestring.A, shoestring.B, committed, try): enables updates on a plain Linux host")
	boardName := fs.String("board", "", "with -slots: the board whose bundles this host installs (its architecture's: qemu-amd64, qemu-arm64, atom386...)")
	fs.Parse(args)
	if *path == "" {
		return errors.New("run: -config FILE is required")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	doc, rerr := os.ReadFile(*path)
	cfg, err := config.Load(*path)
	if rerr != nil {
		err = rerr
	}
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
		doc, _ = last.Marshal()
	}
	if *data != "" {
		cfg.DataDir = *data
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := node.Options{Config: cfg, Logger: log, Version: version}
	if *slots != "" {
		if opts.OTA, err = binarySlots(*slots, *boardName, cfg.DataDir); err != nil {
			return err
		}
	}
	// The node runs under a supervisor so that PUT /api/v1/config can
	// replace its config whole (package reconfig).
	var sup *reconfig.Supervisor
	sup = reconfig.New(reconfig.Options{Document: doc, Config: cfg, Log: log, New: func(c *config.Config, ready func()) reconfig.Runtime {
		o := opts
		o.Config, o.Reconfig = c, sup
		o.OnReady = func([]string, string) { ready() }
		return node.New(o)
	}})
	return sup.Run(ctx)
}

// binarySlots is the OTA layout of a plain Linux host: the two binaries
// in dir, the slot state in the data directory, the running slot from
// SHOESTRING_SLOT (set by the launcher, slot.SelectBinary).
func binarySlots(dir, boardName, dataDir string) (*agent.Layout, error) {
	if _, err := board.Get(boardName); err != nil {
		return nil, fmt.Errorf("run -slots needs -board: %w", err)
	}
	s, err := slot.New(slot.Config{Method: slot.Binary, Dir: dir, StateFile: filepath.Join(dataDir, "ota", "slots.json")})
	if err != nil {
		return nil, err
	}
	return &agent.Layout{
		Method:  slot.Binary,
		Slots:   s,
		SlotDir: func(string) (string, func() error, error) { return dir, nil, nil },
		Booted:  slot.Booted(),
		Board:   boardName,
	}, nil
}
