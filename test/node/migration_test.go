package node_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/node"
	"github.com/shoestring-dns/shoestring/ota/agent/agenttest"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestStoreMigrationAcrossBuilds takes a plain host's store through a
// real migration between two builds and back: the shipped binary (store
// format 1) holds a zone uploaded through the API; a second build
// (-tags shoestring_format2: format 2, one migration ahead) is installed
// as v2.0.0, migrates the store on its trial start (after a snapshot)
// and serves the zone; it dies before its soak ends, so the launcher
// falls back to the old binary, which finds a newer store, restores the
// snapshot, marks v2.0.0 bad and serves the acknowledged zone. The same
// build as v2.0.1 then migrates again, passes its soak and commits, and
// the commit drops the snapshot.
func TestStoreMigrationAcrossBuilds(t *testing.T) {
	bin := testenv.Binary(t)
	dir := t.TempDir()
	v2bin := filepath.Join(dir, "shoestring-format2")
	testenv.BinaryWithTags(t, v2bin, "shoestring_format2")
	slots, _ := committedSlotA(t, dir, bin)
	v2, err := os.ReadFile(v2bin)
	if err != nil {
		t.Fatal(err)
	}
	signer, pub := agenttest.Key(t, "migration-test")
	dies := agenttest.HostBundle(t, dir, "v2.0.0", signer, v2)
	good := agenttest.HostBundle(t, dir, "v2.0.1", signer, v2)

	// A soak long enough to kill the trial inside it, and no longer.
	h := newHostSlots(t, dir, bin, slots, pub, 8*time.Second)
	db := filepath.Join(h.data, node.StoreFile)
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	r := h.launch()
	waitAnswer(t, h.addr, "www.example.org.", "192.0.2.44")
	h.waitSlots()
	const acked = "$TTL 300\n@ IN SOA ns1 h 1 3600 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.77\n"
	if _, err := h.c.PutZone("acked.test", []byte(acked)); err != nil {
		t.Fatalf("uploading acked.test: %v", err)
	}
	waitAnswer(t, h.addr, "www.acked.test.", "192.0.2.77")

	// v2.0.0: migrates, serves, dies in its trial.
	if u, err := h.update(dies); err != nil || u.Slot != "B" || u.State != "rebooting" {
		t.Fatalf("update to v2.0.0: %+v %v", u, err)
	}
	h.exited(r, 30*time.Second)
	r = h.launch()
	waitAnswer(t, h.addr, "www.acked.test.", "192.0.2.77")
	if s := h.waitSlots(); s.Booted != "B" || s.Committed != "A" {
		t.Fatalf("v2.0.0's trial: %+v", s)
	}
	if !exists(db + ".format1") {
		t.Fatalf("v2.0.0 serves, but no snapshot %s.format1 was taken before migrating", db)
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	h.exited(r, 10*time.Second)

	// The old binary again: restores the snapshot, v2.0.0 is bad.
	r = h.launch()
	waitAnswer(t, h.addr, "www.acked.test.", "192.0.2.77")
	s := h.waitSlots()
	if s.Booted != "A" || s.Committed != "A" || s.Slots[1].Status != "bad" || s.Slots[1].Version != "v2.0.0" ||
		s.Last == nil || s.Last.Result != "rolled_back" {
		t.Errorf("after v2.0.0 died in its trial: %+v", s)
	}
	if !exists(db+".rolled-back-format2") || exists(db+".format1") {
		t.Errorf("after the rollback: want the format 2 file put aside and the snapshot restored in its place")
	}

	// v2.0.1, the same build: migrates again and commits.
	if u, err := h.update(good); err != nil || u.Slot != "B" || u.State != "rebooting" {
		t.Fatalf("update to v2.0.1: %+v %v", u, err)
	}
	h.exited(r, 30*time.Second)
	h.launch()
	waitAnswer(t, h.addr, "www.acked.test.", "192.0.2.77")
	s = h.waitSlots()
	for deadline := time.Now().Add(30 * time.Second); s.Committed != "B" && time.Now().Before(deadline); s = h.waitSlots() {
		time.Sleep(200 * time.Millisecond)
	}
	if s.Committed != "B" || s.Booted != "B" || s.Slots[1].Version != "v2.0.1" {
		t.Fatalf("v2.0.1 after its soak: %+v", s)
	}
	for deadline := time.Now().Add(5 * time.Second); exists(db+".format1") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if exists(db + ".format1") {
		t.Errorf("v2.0.1 is committed, but its snapshot %s.format1 is still there", db)
	}
	waitAnswer(t, h.addr, "www.acked.test.", "192.0.2.77")
}
