package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParsePrefixOrAddr(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{in: "192.0.2.0/24", want: "192.0.2.0/24"},
		{in: "192.0.2.77/24", want: "192.0.2.0/24"},
		{in: "192.0.2.53", want: "192.0.2.53/32"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "2001:db8:1::5/32", want: "2001:db8::/32"},
		{in: "2001:db8::53", want: "2001:db8::53/128"},
		{in: "::/0", want: "::/0"},
		{in: "::ffff:192.0.2.1", want: "192.0.2.1/32"},
		{in: "::ffff:192.0.2.77/120", want: "192.0.2.0/24"},
		{in: "::ffff:0.0.0.0/96", want: "0.0.0.0/0"},
		{in: "::ffff:0:0/95", want: "::fffe:0:0/95"},
		{in: "fe80::1%eth0", err: "zone"},
		{in: "192.0.2.0/33", err: "not an address or prefix"},
		{in: "example.net", err: "not an address or prefix"},
		{in: "", err: "not an address or prefix"},
	} {
		got, err := ParsePrefixOrAddr(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v %v, want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != netip.MustParsePrefix(c.want) {
			t.Errorf("%q: %v %v, want %s", c.in, got, err, c.want)
		}
	}
}
