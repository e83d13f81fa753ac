package main

import (
	"fmt"
	"strings"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

// devSecondary maps dev mode's -secondary, -catalog and -tsig flags onto
// the config document, so an operator can try the node against their own
// primary in one line. Dev mode also serves AXFR/IXFR to loopback, so a
// second dev node (or kdig) can transfer from this one.
func devSecondary(cfg *config.Config, secondaries, catalogs, keys []string) error {
	sc := &cfg.Secondary
	for _, k := range keys {
		key, err := config.ParseTSIGKey(k)
		if err != nil {
			return fmt.Errorf("dev: -tsig %w", err)
		}
		sc.Keys = append(sc.Keys, key)
	}
	parse := func(flag, v string) (string, config.Remote, error) {
		origin, primary, ok := strings.Cut(v, "=")
		if !ok || origin == "" || primary == "" {
			return "", config.Remote{}, fmt.Errorf("dev: -%s %q: want ORIGIN=ADDR[:PORT][@KEYNAME]", flag, v)
		}
		r, err := config.ParseRemote(primary)
		if err != nil {
			return "", config.Remote{}, fmt.Errorf("dev: -%s %q: %w", flag, v, err)
		}
		return origin, r, nil
	}
	for _, v := range secondaries {
		origin, r, err := parse("secondary", v)
		if err != nil {
			return err
		}
		sc.Zones = append(sc.Zones, config.SecondaryZone{Origin: origin, Primaries: []config.Remote{r}})
	}
	for _, v := range catalogs {
		origin, r, err := parse("catalog", v)
		if err != nil {
			return err
		}
		sc.Catalogs = append(sc.Catalogs, config.CatalogZone{Origin: origin, Primaries: []config.Remote{r}})
	}
	sc.Outbound.Allow = append(sc.Outbound.Allow, config.AllowRule{From: []string{"127.0.0.0/8", "::1"}})
	// The same checks as a config file gets (unknown keys, duplicates),
	// on the document as the node will run it: with its defaults, since
	// a duration left out is not the same as one set to 0.
	cfg.SetDefaults()
	b, err := cfg.Marshal()
	if err != nil {
		return err
	}
	if _, err := config.Parse(b); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	return nil
}
