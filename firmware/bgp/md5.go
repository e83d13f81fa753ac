package bgp

import (
	"fmt"
	"net/netip"
	"syscall"

	"github.com/jwhited/corebgp"
	"golang.org/x/sys/unix"
)

// md5Key is one TCP-MD5 (RFC 2385) key: the neighbour and the password.
type md5Key struct {
	addr     netip.Addr
	password string
}

// setMD5 installs keys on a socket before it connects or listens. A
// listening socket needs the key of every neighbour that may dial it: the
// kernel drops signed SYNs it has no key for, and unsigned ones from a
// neighbour it has a key for.
func setMD5(c syscall.RawConn, keys []md5Key) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		domain, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		if err != nil {
			serr = fmt.Errorf("TCP-MD5: socket domain: %w", err)
			return
		}
		for _, k := range keys {
			bits := uint8(32)
			switch {
			case domain == unix.AF_INET6:
				// An IPv6 socket sees IPv4 neighbours as v4-mapped
				// addresses; corebgp maps them, and the key must then
				// cover the full 128 bits.
				bits = 128
			case !k.addr.Is4():
				continue // an IPv4 socket never meets an IPv6 neighbour
			}
			if err := corebgp.SetTCPMD5Signature(int(fd), k.addr, bits, k.password); err != nil {
				serr = fmt.Errorf("TCP-MD5 key for %v: %w", k.addr, err)
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
