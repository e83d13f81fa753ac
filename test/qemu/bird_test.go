package qemu

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

// bird is a BIRD 2 on the host side of the guest's user-mode network. It
// connects to the node through the port QEMU forwards to the guest's
// 179: BIRD dials 127.0.0.1:port from 127.0.0.2, and the node sees the
// session come from 10.0.2.2, its configured (passive) peer.
type bird struct {
	sock string
	cmd  *exec.Cmd
	out  *testenv.SyncBuffer
}

// Fixed by the test's node config.
const (
	birdASN = 65000
	nodeASN = 65053
)

func startBIRD(t *testing.T, fwdPort int) *bird {
	t.Helper()
	bin := testenv.RequireTool(t, "bird")
	testenv.RequireTool(t, "birdc")
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	// BIRD listens as well as connects; its own port keeps it clear of
	// other BIRDs (the other board's, the routing lab's) on 179.
	ports, err := FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	// Retry fast: until the guest's node listens, QEMU accepts the
	// forwarded connection and then drops it.
	cfg := fmt.Sprintf(`log stderr all;
router id 10.0.2.2;
protocol device {}
protocol bgp node {
  local 127.0.0.2 port %d as %d;
  neighbor 127.0.0.1 port %d as %d;
  multihop 2;
  hold time 30;
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 4;
  debug { states, events };
  ipv4 { import all; export none; };
}
`, ports[0], birdASN, fwdPort, nodeASN)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &bird{sock: filepath.Join(dir, "bird.ctl"), out: &testenv.SyncBuffer{}}
	b.cmd = exec.Command(bin, "-f", "-c", conf, "-s", b.sock, "-P", filepath.Join(dir, "bird.pid"))
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.cmd.Process.Kill()
		b.cmd.Wait()
		if t.Failed() {
			t.Logf("BIRD log:\n%s", b.out.String())
		}
	})
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(b.sock); err == nil {
			return b
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("BIRD did not start:\n%s", b.out.String())
	return nil
}

func (b *bird) birdc(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	return string(out), err
}

// established reports whether the session to the node is up.
func (b *bird) established() bool {
	out, err := b.birdc("show", "protocols", "node")
	return err == nil && strings.Contains(out, "Established")
}

// routes lists what BIRD learned from the node.
func (b *bird) routes() string {
	out, _ := b.birdc("show", "route", "protocol", "node")
	return out
}
