package tenant

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The host only holds a tenant's sockets: none of them may be in the
// host's own epoll set, or every datagram the tenant is sent wakes the
// host too (it did: 3 to 4 µs of host CPU per query).
func TestSocketsNotPolledByHost(t *testing.T) {
	// Make sure the runtime's poller exists.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := bindSockets([]netip.Addr{netip.MustParseAddr("127.0.0.1")}, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.files) != 2 || !s.kinds[0].UDP || s.kinds[1].UDP {
		t.Fatalf("sockets %+v, want one UDP then one TCP", s.kinds)
	}
	polled := epollTargets(t)
	for i, f := range s.files {
		if polled[int(f.Fd())] {
			t.Errorf("%s socket %d (fd %d) is in this process's epoll set", s.kinds[i].Addr, i, f.Fd())
		}
	}
	if !polled[fdOf(t, ln)] {
		t.Fatal("epollTargets found no net.Listener: it reads the wrong thing")
	}

	// As a tenant gets it: a copy through package net answers.
	uc := udpConnOf(t, s.files[0])
	defer uc.Close()
	c, err := net.Dial("udp", uc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 16)
	n, from, err := uc.ReadFromUDP(b)
	if err != nil || string(b[:n]) != "ping" {
		t.Fatalf("read %q from %v: %v", b[:n], from, err)
	}

	// The host sets the UDP buffers the tenant, without CAP_NET_ADMIN,
	// could not (the kernel reports twice what was set).
	if os.Geteuid() == 0 {
		for _, o := range []int{unix.SO_RCVBUF, unix.SO_SNDBUF} {
			v, err := unix.GetsockoptInt(int(s.files[0].Fd()), unix.SOL_SOCKET, o)
			if err != nil || v < 2*udpBuffer {
				t.Errorf("UDP buffer option %d: %d (%v), want %d", o, v, err, 2*udpBuffer)
			}
		}
	}
}

// epollTargets are the descriptors in this process's epoll sets.
func epollTargets(t *testing.T) map[int]bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for _, e := range ents {
		link, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if link != "anon_inode:[eventpoll]" {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "tfd:" {
				if n, err := strconv.Atoi(f[1]); err == nil {
					out[n] = true
				}
			}
		}
	}
	return out
}

func fdOf(t *testing.T, ln net.Listener) int {
	raw, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	raw.Control(func(f uintptr) { fd = int(f) })
	return fd
}

func udpConnOf(t *testing.T, f *os.File) *net.UDPConn {
	pc, err := net.FilePacketConn(f)
	if err != nil {
		t.Fatal(err)
	}
	return pc.(*net.UDPConn)
}
