package xfr

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
)

// TestRemoteDialFrom: a remote with a source address is dialled through
// DialFrom, with that source; Dial, which cannot bind one, is not used.
func TestRemoteDialFrom(t *testing.T) {
	z := bigZone(t, 3, 5)
	addr := serveTCP(t, &Server{Source: &memSource{z: z}, ACL: ACL{{}}}, 0)
	src := netip.MustParseAddr("127.0.0.1")
	var got netip.Addr
	r := Remote{Addr: addr, Source: src,
		Dial: func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("Dial used") },
		DialFrom: func(ctx context.Context, network string, source netip.Addr, a string) (net.Conn, error) {
			got = source
			d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(source, 0))}
			return d.DialContext(ctx, network, a)
		}}
	if _, err := (&Client{}).AXFR(context.Background(), r, "example.test."); err != nil {
		t.Fatal(err)
	}
	if got != src {
		t.Fatalf("DialFrom called with source %v, want %v", got, src)
	}
}
