package pid1

import (
	"errors"
	"log/slog"
	"os"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/node"
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
	if last, lerr := node.LastGoodConfig(config.DefaultDataDir); lerr == nil {
		log.Warn("running with the last config that worked")
		return last, "last good config in the store"
	} else if !errors.Is(err, os.ErrNotExist) {
		log.Error("and no last good config", "err", lerr)
	}
	cfg = &config.Config{}
	cfg.SetDefaults()
	return cfg, "defaults"
}
