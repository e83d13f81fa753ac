package pid1

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/node"
	"github.com/shoestring-dns/shoestring/firmware/store"
)

// loadNodeConfig reads the node config from the data partition. A broken
// file does not take the box off the air: the last config that worked,
// kept in the store, is used and the error logged (as `shoestring run`
// does). Without any config the node runs with the defaults — serving
// what its store holds — and says how to provision it. The second result
// says where the config came from.
func loadNodeConfig(path string, log *slog.Logger) (*config.Config, string) {
	cfg, err := config.Load(path)
	if err == nil {
		return cfg, path
	}
	if errors.Is(err, os.ErrNotExist) {
		log.Warn("no node config; running with defaults. Put node.yaml in the boot partition's provision folder (see firmware/pid1/README.md)", "path", path)
	} else {
		log.Error("node config rejected", "path", path, "err", err)
	}
	if last, lerr := lastGoodConfig(config.DefaultDataDir); lerr == nil {
		log.Warn("running with the last config that worked")
		return last, "last good config in the store"
	} else if !errors.Is(err, os.ErrNotExist) {
		log.Error("and no last good config", "err", lerr)
	}
	cfg = &config.Config{}
	cfg.SetDefaults()
	return cfg, "defaults"
}

// lastGoodConfig reads the config the node last ran with from its store.
func lastGoodConfig(dir string) (*config.Config, error) {
	path := filepath.Join(dir, node.StoreFile)
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	b, err := st.GetMeta("config", "last-good")
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return config.Parse(b)
}
