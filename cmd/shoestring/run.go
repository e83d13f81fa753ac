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
	"sync/atomic"
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
	var restart atomic.Pointer[string]
	if *slots != "" {
		if opts.OTA, err = binarySlots(*slots, *boardName, cfg.DataDir, log); err != nil {
			return err
		}
		// The update transaction's restarts: the node drains and exits,
		// and systemd starts the launcher again (Restart=always), which
		// picks the armed slot, or the committed one.
		opts.OTA.Reboot = func(reason string) { restart.Store(&reason); stop() }
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
	err = sup.Run(ctx)
	if opts.OTA != nil {
		// A planned stop during a trial (systemctl restart, a host
		// reboot) re-arms it, so it does not count as a failed trial.
		if kept, kerr := slot.KeepTrial(opts.OTA.Slots, opts.OTA.Booted); kerr != nil {
			log.Error("trial not re-armed; the next start runs the committed slot", "err", kerr)
		} else if kept {
			log.Info("stopped during a trial: re-armed, the next start goes on with it", "slot", opts.OTA.Booted)
		}
	}
	if err == nil {
		if why := restart.Load(); why != nil {
			// Non-zero, so a unit with Restart=on-failure restarts too.
			return fmt.Errorf("restarting for the update: %s", *why)
		}
	}
	return err
}

// binarySlots is the OTA layout of a plain Linux host: the two binaries
// in dir, the slot state in the data directory, the running slot from
// SHOESTRING_SLOT (set by the launcher, slot.SelectBinary).
func binarySlots(dir, boardName, dataDir string, log *slog.Logger) (*agent.Layout, error) {
	if _, err := board.Get(boardName); err != nil {
		return nil, fmt.Errorf("run -slots needs -board: %w", err)
	}
	s, err := slot.New(slot.Config{Method: slot.Binary, Dir: dir, StateFile: filepath.Join(dataDir, "ota", "slots.json")})
	if err != nil {
		return nil, err
	}
	booted := slot.Booted()
	if booted != "" {
		// As PID 1 does at every boot: count a trial's starts, and mark
		// a trial bad that ended without a commit (the launcher fell
		// back to the committed binary).
		st, err := s.RecordBoot(booted)
		if err != nil {
			return nil, fmt.Errorf("slot state: %w", err)
		}
		log.Info("slots", "booted", booted, "committed", st.Committed, "trial", st.Trial, "boots", st.Boots)
	} else {
		log.Warn("run -slots without " + slot.SlotEnv + ": start it with `shoestring launch`; this run counts as the committed slot")
	}
	return &agent.Layout{
		Method:  slot.Binary,
		Slots:   s,
		SlotDir: func(string) (string, func() error, error) { return dir, nil, nil },
		Booted:  booted,
		Board:   boardName,
	}, nil
}
