package main

import (
	"testing"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

// TestDevSecondaryChecks: the document dev mode builds from its flags
// passes the config file's checks (a regression: durations left out were
// checked as if set to 0, and every dev node with -secondary refused to
// start).
func TestDevSecondaryChecks(t *testing.T) {
	cfg := &config.Config{DataDir: t.TempDir()}
	cfg.DNS.Listen = []config.HostPort{"127.0.0.1:5353"}
	err := devSecondary(cfg,
		[]string{"plain.test=127.0.0.1:5300@k"},
		[]string{"cat.test=127.0.0.1:5300@k"},
		[]string{"k=hmac-sha256:SGVyZSBpcyBhIHNlY3JldCBmb3IgZGV2IG1vZGUh"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Secondary.Zones) != 1 || len(cfg.Secondary.Catalogs) != 1 {
		t.Fatalf("secondary section: %+v", cfg.Secondary)
	}
	if err := devSecondary(cfg, []string{"bad"}, nil, nil); err == nil {
		t.Error("-secondary bad: accepted")
	}
}
