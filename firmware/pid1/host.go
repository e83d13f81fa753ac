package pid1

import (
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

// setHostname sets the kernel's host name.
func setHostname(name string) error {
	if !config.ValidHostname(name) {
		return fmt.Errorf("%q is not a host name", name)
	}
	return unix.Sethostname([]byte(name))
}

// writeResolvConf points the box's own lookups (Go's resolver reads
// /etc/resolv.conf) at the configured recursive resolvers: the node is
// authoritative only and answers nothing else. resolv.conf has no ports;
// resolvers on other ports are skipped.
func writeResolvConf(resolvers []config.HostPort) error {
	var b strings.Builder
	b.WriteString("# written by shoestring (system.resolvers)\noptions timeout:2 attempts:2 rotate\n")
	for _, r := range resolvers {
		host, port, err := net.SplitHostPort(string(r))
		if err != nil || port != "53" {
			continue
		}
		fmt.Fprintf(&b, "nameserver %s\n", host)
	}
	return os.WriteFile("/etc/resolv.conf", []byte(b.String()), 0o644)
}

// loopbackUp brings lo up: the management API's default address and the
// node's self-checks are on it, and the kernel leaves it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// linkPresent reports whether a network interface exists.
func linkPresent(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}
