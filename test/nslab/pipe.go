package nslab

import (
	"io"
	"net"
)

// PipeTCP accepts connections on ln until it is closed and joins each to
// a connection from dial, copying both ways until either side ends: how
// a test reaches a listener in another namespace, behind QEMU's
// forwards or on a tailnet from the host's loopback. Run it in its own
// goroutine.
func PipeTCP(ln net.Listener, dial func() (net.Conn, error)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := dial()
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(up, c); done <- struct{}{} }()
			go func() { io.Copy(c, up); done <- struct{}{} }()
			<-done
		}()
	}
}
