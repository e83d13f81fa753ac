package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// OTA configures over-the-air updates (package ota/agent): which keys a
// bundle must be signed with, how long a new version must stay healthy
// before it is committed, and whether an older version may be installed.
// README.md beside this file documents every option with its default.
type OTA struct {
	// Keys are the trusted public keys: each entry is a key in the
	// bundle package's encoding ("NAME+HASH+BASE64", as `shoestring
	// bundle keygen` writes to NAME.pub) or the absolute path of a file
	// holding such keys, one a line. More than one is how keys rotate.
	// With none, the node refuses every update.
	Keys []string `yaml:"keys,omitempty"`
	// Soak is how long a new version must stay healthy after its trial
	// boot before it is committed.
	Soak Duration `yaml:"soak,omitempty"`
	// AllowDowngrade accepts bundles whose version is not newer than the
	// running one.
	AllowDowngrade bool `yaml:"allow_downgrade,omitempty"`
}

// DefaultOTASoak is ota.soak's default.
const DefaultOTASoak = Duration(60 * time.Second)

// KeyIsFile says whether an ota.keys entry names a file rather than
// being a key.
func KeyIsFile(k string) bool { return strings.HasPrefix(k, "/") }

func (o *OTA) check(c *Config, line func(string) int) []string {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("line %d: ota: %s", line(key), fmt.Sprintf(format, args...)))
	}
	for _, k := range o.Keys {
		k = strings.TrimSpace(k)
		switch {
		case KeyIsFile(k):
			if filepath.Clean(k) != k {
				bad(k, "keys: %q: write the path clean", k)
			}
		case strings.HasPrefix(k, "PRIVATE+KEY+"):
			bad("keys", "keys: a private key; give the public one (NAME.pub)")
		default:
			if _, err := note.NewVerifier(k); err != nil {
				bad(k, "keys: %q is neither a public key (NAME+HASH+BASE64) nor an absolute file path: %v", k, err)
			}
		}
	}
	if s := time.Duration(o.Soak); s != 0 && (s < 5*time.Second || s > time.Hour) {
		bad("soak", "soak %s: must be 5s..1h", s)
	}
	return errs
}

func (o *OTA) setDefaults(c *Config) {
	if o.Soak == 0 {
		o.Soak = DefaultOTASoak
	}
}
