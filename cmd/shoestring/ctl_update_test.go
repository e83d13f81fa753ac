package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/node"
	"github.com/shoestring-dns/shoestring/ota/agent/agenttest"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// startSlotNode starts a real node on a GRUB slot layout in temporary
// directories, trusting the rig's key, and returns its API address.
func startSlotNode(t *testing.T, r *agenttest.Rig) string {
	t.Helper()
	cfg := &config.Config{DataDir: t.TempDir()}
	cfg.DNS.Listen = []config.HostPort{"127.0.0.1:0"}
	cfg.Management.Listen = "127.0.0.1:0"
	cfg.Node.Name = "ota"
	cfg.OTA.Keys = []string{r.PubKey}
	cfg.SetDefaults()
	layout := r.Layout()
	ready := make(chan string, 1)
	n := node.New(node.Options{
		Config: cfg, Version: "v1.0.0", OTA: &layout,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnReady: func(_ []string, h string) { ready <- h },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node: %v", err)
		}
	})
	select {
	case h := <-ready:
		return h
	case err := <-done:
		t.Fatalf("node exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("node not ready after 10s")
	}
	return ""
}

func ctlRun(t *testing.T, addr string, asJSON bool, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	e := &ctlEnv{c: api.NewClient(addr), json: asJSON, out: &out, every: 5 * time.Millisecond}
	err := ctlCommands()[args[0]].run(e, args[1:])
	return out.String(), err
}

// TestCtlUpdateAndSlots runs `ctl slots` and `ctl update` against a real
// node: a bad bundle is refused with its reason and leaves slot B as it
// was, a good one is installed into slot B and armed, and `ctl slots`
// shows both, in a table and as JSON.
func TestCtlUpdateAndSlots(t *testing.T) {
	r := agenttest.New(t, board.GRUBEnv)
	addr := startSlotNode(t, r)
	dir := t.TempDir()
	p := agenttest.MakeParts(t, "v1.1.0")
	// A kernel large enough for a few progress lines.
	p.Kernel = append(p.Kernel, bytes.Repeat([]byte("k"), 6<<20)...)
	good := filepath.Join(dir, "good.bundle")
	os.WriteFile(good, r.Bundle(t, agenttest.Board, "v1.1.0", p, nil), 0o644)
	wrongBoard := filepath.Join(dir, "rpi.bundle")
	os.WriteFile(wrongBoard, r.Bundle(t, "rpi", "v1.1.0", p, nil), 0o644)

	out, err := ctlRun(t, addr, false, "slots")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"committed", "yes", "boot method  grubenv", "last update  none"} {
		if !strings.Contains(out, want) {
			t.Errorf("ctl slots lacks %q:\n%s", want, out)
		}
	}

	before := r.Hashes(t, slot.B)
	_, err = ctlRun(t, addr, false, "update", wrongBoard)
	if err == nil || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "wrong board: bundle is for rpi") {
		t.Fatalf("ctl update of a bad bundle: %v", err)
	}
	if !reflect.DeepEqual(before, r.Hashes(t, slot.B)) {
		t.Fatal("a refused bundle changed slot B")
	}
	out, _ = ctlRun(t, addr, false, "slots")
	if !strings.Contains(out, "last update  refused") || !strings.Contains(out, "wrong board") {
		t.Errorf("ctl slots after a bad bundle:\n%s", out)
	}

	out, err = ctlRun(t, addr, false, "update", good)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ctl update:\n%s", out)
	if !strings.Contains(out, "armed v1.1.0 → slot B") || !strings.Contains(out, "installed v1.1.0 in slot B and armed") {
		t.Errorf("ctl update output:\n%s", out)
	}
	got, _ := os.ReadFile(filepath.Join(r.SlotDirs[slot.B], "initrd.img"))
	if !bytes.Equal(got, p.Initramfs) {
		t.Error("slot B does not hold the new initramfs")
	}

	out, err = ctlRun(t, addr, true, "slots")
	if err != nil {
		t.Fatal(err)
	}
	var s api.SlotsStatus
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("ctl -json slots: %v\n%s", err, out)
	}
	if s.Try != slot.B || s.Slots[1].Version != "v1.1.0" || s.Slots[1].Status != "trying" || s.Last == nil || s.Last.Result != "installed" {
		t.Errorf("slots after the update: %+v", s)
	}
	out, _ = ctlRun(t, addr, false, "slots")
	if !strings.Contains(out, "next boot    tries slot B once") {
		t.Errorf("ctl slots after the update:\n%s", out)
	}
}
