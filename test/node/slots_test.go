package node_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/ota/agent/agenttest"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestRunBinarySlots updates a plain host's node — `shoestring launch`
// under a loop that plays systemd's Restart=always — with the same
// signed bundles a box takes: a good one is installed into slot B, the
// node restarts into it, soaks and commits it (the committed symlink
// moves); a bundle whose binary exits at once is tried once, the
// launcher falls back to B, B's start marks it bad, and it is refused
// when offered again.
func TestRunBinarySlots(t *testing.T) {
	bin := testenv.Binary(t)
	dir := t.TempDir()
	slots, self := committedSlotA(t, dir, bin)
	signer, pub := agenttest.Key(t, "host-test")
	good := agenttest.HostBundle(t, dir, "v1.0.0", signer, self)
	bad := agenttest.HostBundle(t, dir, "v1.1.0", signer, exitingBinary(t, dir))

	h := newHostSlots(t, dir, bin, slots, pub, 5*time.Second)
	launch, exited, waitAPI, c, addr := h.launch, h.exited, h.waitSlots, h.c, h.addr

	r := launch()
	waitAnswer(t, addr, "www.example.org.", "192.0.2.44")
	if s := waitAPI(); s.Method != "binary" || s.Booted != "A" || s.Committed != "A" {
		t.Fatalf("slots before the update: %+v", s)
	}
	start := time.Now()
	f, _ := os.Open(good)
	u, err := c.Update(f, false)
	f.Close()
	if err != nil || u.State != "rebooting" || u.Slot != "B" {
		t.Fatalf("update: %+v %v", u, err)
	}
	if err := exited(r, 30*time.Second); err == nil {
		t.Errorf("the node exited 0 to restart for the update; systemd's Restart=on-failure would not restart it")
	}
	r = launch()
	waitAnswer(t, addr, "www.example.org.", "192.0.2.44")
	s := waitAPI()
	for deadline := time.Now().Add(30 * time.Second); s.Committed != "B" && time.Now().Before(deadline); s = waitAPI() {
		time.Sleep(200 * time.Millisecond)
	}
	if s.Committed != "B" || s.Booted != "B" || s.Slots[1].Version != "v1.0.0" || s.Last == nil || s.Last.Result != "committed" {
		t.Fatalf("after the soak: %+v", s)
	}
	toCommit := time.Since(start)
	if l, err := os.Readlink(filepath.Join(slots, "committed")); err != nil || l != "shoestring.B" {
		t.Errorf("committed symlink: %q %v", l, err)
	}

	// A binary that exits at once: tried once, then the launcher runs
	// the committed one again.
	f, _ = os.Open(bad)
	u, err = c.Update(f, false)
	f.Close()
	if err != nil || u.Slot != "A" {
		t.Fatalf("update to the exiting binary: %+v %v", u, err)
	}
	exited(r, 30*time.Second)
	r = launch()
	exited(r, 10*time.Second) // the trial binary exits at once
	r = launch()
	waitAnswer(t, addr, "www.example.org.", "192.0.2.44")
	s = waitAPI()
	if s.Booted != "B" || s.Committed != "B" || s.Slots[0].Status != "bad" || s.Slots[0].Version != "v1.1.0" ||
		s.Last == nil || s.Last.Result != "rolled_back" || len(s.Bad) != 1 {
		t.Errorf("after the exiting binary: %+v", s)
	}
	f, _ = os.Open(bad)
	_, err = c.Update(f, false)
	f.Close()
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusUnprocessableEntity || !strings.Contains(ae.Body.Error, "failed its trial before") {
		t.Errorf("the bad version offered again: %v", err)
	}
	t.Logf("host update committed %s after the upload started (soak 5 s)", toCommit.Round(100*time.Millisecond))
}

// exitingBinary is a program that exits at once.
func exitingBinary(t *testing.T, dir string) []byte {
	t.Helper()
	src := filepath.Join(dir, "exiting")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module exiting\n\ngo 1.22\n"), 0o644)
	out := filepath.Join(dir, "exiting.bin")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the exiting binary: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// committedSlotA makes DIR/slots as a plain host's install leaves it: the
// binary bin as shoestring.A, committed. It returns the directory and the
// binary's bytes.
func committedSlotA(t *testing.T, dir, bin string) (string, []byte) {
	t.Helper()
	slots := filepath.Join(dir, "slots")
	if err := os.MkdirAll(slots, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(slots, "shoestring.A"), self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("shoestring.A", filepath.Join(slots, "committed")); err != nil {
		t.Fatal(err)
	}
	return slots, self
}

// hostSlots is a plain host's node under `shoestring launch -slots`
// (systemd's ExecStart), serving example.org from a file, with the
// management API on loopback and ota.soak as given.
type hostSlots struct {
	t     *testing.T
	bin   string
	slots string
	cfg   string
	data  string // the node's data_dir
	addr  string // its DNS address
	c     *api.Client
	n     int
}

func newHostSlots(t *testing.T, dir, bin, slots, pub string, soak time.Duration) *hostSlots {
	t.Helper()
	zoneFile := filepath.Join(dir, "example.org.zone")
	os.WriteFile(zoneFile, []byte("$TTL 300\n@ IN SOA ns1 h 5 3600 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.44\n"), 0o644)
	h := &hostSlots{t: t, bin: bin, slots: slots, cfg: filepath.Join(dir, "node.yaml"), data: filepath.Join(dir, "data"),
		addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	mgmt := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	os.WriteFile(h.cfg, []byte(fmt.Sprintf(`node:
  name: host-test
data_dir: %s
dns:
  listen: ["%s"]
management:
  listen: "%s"
zones:
  - origin: example.org
    file: %s
ota:
  keys: ["%s"]
  soak: %s
`, h.data, h.addr, mgmt, zoneFile, pub, soak)), 0o644)
	h.c = api.NewClient("http://" + mgmt)
	return h
}

// hostRun is one start of the service.
type hostRun struct {
	cmd  *exec.Cmd
	log  *testenv.SyncBuffer
	done chan error
}

// launch runs the service once, as systemd's ExecStart (launch execs
// the slot's binary: the process is the node).
func (h *hostSlots) launch() *hostRun {
	t := h.t
	h.n++
	r := &hostRun{log: &testenv.SyncBuffer{}, done: make(chan error, 1)}
	r.cmd = exec.Command(h.bin, "launch", "-slots", h.slots, "--", "run", "-config", h.cfg, "-slots", h.slots, "-board", "qemu-amd64")
	r.cmd.Stderr = r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	i := h.n
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
		if t.Failed() {
			t.Logf("start %d log:\n%s", i, r.log.String())
		}
	})
	return r
}

// exited waits for a start to end and returns how.
func (h *hostSlots) exited(r *hostRun, within time.Duration) error {
	h.t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(within):
		h.t.Fatalf("the node did not exit within %s", within)
		return nil
	}
}

// waitSlots returns the slots once the management API answers.
func (h *hostSlots) waitSlots() api.SlotsStatus {
	h.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		s, err := h.c.Slots()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("slots: %v", err)
		}
	}
}

// update uploads a bundle file; the node answers before it restarts.
func (h *hostSlots) update(file string) (api.UpdateStatus, error) {
	f, err := os.Open(file)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	return h.c.Update(f, false)
}
