package dnsserver

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUDPSocketBuffers: a UDP socket the server serves gets buffers of
// udpSocketBuffer (the kernel reports twice what was set), past
// rmem_max when running as root, so bursts are not dropped.
func TestUDPSocketBuffers(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	raw, err := pc.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	get := func(opt int) int {
		var v int
		raw.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt) })
		return v
	}
	before := get(unix.SO_RCVBUF)
	if err := growBuffers(raw); err != nil && os.Geteuid() == 0 {
		t.Fatal(err)
	}
	rcv, snd := get(unix.SO_RCVBUF), get(unix.SO_SNDBUF)
	t.Logf("SO_RCVBUF %d → %d, SO_SNDBUF %d", before, rcv, snd)
	if os.Geteuid() != 0 {
		if rcv < before {
			t.Fatalf("SO_RCVBUF shrank: %d → %d", before, rcv)
		}
		return
	}
	if rcv < 2*udpSocketBuffer || snd < 2*udpSocketBuffer {
		t.Fatalf("as root: SO_RCVBUF %d, SO_SNDBUF %d, want at least %d", rcv, snd, 2*udpSocketBuffer)
	}
}
