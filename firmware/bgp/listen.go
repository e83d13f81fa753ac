package bgp

import (
	"context"
	"fmt"
	"net"
	"syscall"
)

// listen opens the configured listeners with the TCP-MD5 keys of all peers
// set on each, so a neighbour with a password can connect to any of them.
func listen(ctx context.Context, addrs []string, keys []md5Key) ([]net.Listener, error) {
	lc := net.ListenConfig{
		Control: func(_, _ string, c syscall.RawConn) error {
			if len(keys) == 0 {
				return nil
			}
			return setMD5(c, keys)
		},
	}
	var out []net.Listener
	for _, a := range addrs {
		l, err := lc.Listen(ctx, "tcp", a)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("bgp: listen on %s: %w", a, err)
		}
		out = append(out, l)
	}
	return out, nil
}
