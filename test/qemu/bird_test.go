package qemu

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/test/refserver"
)

// bird is a BIRD 2 on the host side of the guest's user-mode network. It
// connects to the node through the port QEMU forwards to the guest's
// 179: BIRD dials 127.0.0.1:port from 127.0.0.2, and the node sees the
// session come from 10.0.2.2, its configured (passive) peer.
type bird struct{ *refserver.Bird }

// Fixed by the test's node config.
const (
	birdASN = 65000
	nodeASN = 65053
)

func startBIRD(t *testing.T, fwdPort int) *bird {
	t.Helper()
	// BIRD listens as well as connects; its own port keeps it clear of
	// other BIRDs (the other board's, the routing lab's) on 179.
	port := refserver.Port(t)
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
`, port, birdASN, fwdPort, nodeASN)
	return &bird{refserver.StartBIRD(t, refserver.BIRDConfig{Config: cfg})}
}

func (b *bird) birdc(args ...string) (string, error) { return b.Birdc(args...) }

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
