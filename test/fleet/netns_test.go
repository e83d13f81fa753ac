package fleet

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inNetns runs f on a thread moved into the named network namespace; a
// socket f opens stays in that namespace. The thread is moved back and
// unlocked afterwards: a locked thread that ends with its goroutine
// would be terminated, and the lab's daemons (BIRD, gobgpd, the nodes)
// are started with Pdeathsig, which the kernel sends when the *thread*
// that forked them exits. Terminating threads here killed whichever of
// them had been forked on it (the flake of TestRolloutWithBIRD: BIRD,
// gobgpd or a node SIGKILLed mid-test). Only if moving back fails does
// the thread stay locked and end with the goroutine.
func inNetns(name string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		fd, err := os.Open("/run/netns/" + name)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer fd.Close()
		if err := unix.Setns(int(fd.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("leaving namespace %s: %w", name, err)
			return // stays locked: the thread ends with the goroutine
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// forwardTCP listens on host loopback and carries each connection to
// addr inside the namespace: the controller reaches a lab node's
// management API (loopback-only, in the node's namespace) this way.
func forwardTCP(t *testing.T, ns, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var up net.Conn
				if err := inNetns(ns, func() (err error) {
					up, err = net.DialTimeout("tcp", addr, 2*time.Second)
					return err
				}); err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}

// forwardUDP relays DNS queries from host loopback to addr inside the
// namespace, one socket per query: the controller's canary queries
// reach the node's own service address this way.
func forwardUDP(t *testing.T, ns, addr string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := append([]byte(nil), buf[:n]...)
			go func() {
				var up net.Conn
				if inNetns(ns, func() (err error) {
					up, err = net.Dial("udp", addr)
					return err
				}) != nil {
					return
				}
				defer up.Close()
				up.SetDeadline(time.Now().Add(2 * time.Second))
				if _, err := up.Write(q); err != nil {
					return
				}
				r := make([]byte, 65535)
				m, err := up.Read(r)
				if err != nil {
					return
				}
				pc.WriteTo(r[:m], from)
			}()
		}
	}()
	return pc.LocalAddr().String()
}
