package netconf

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/nslab"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// TestDHCP runs the client against dnsmasq on the far side of nslab's
// veth: the lease's address and default route appear, the lease is
// renewed at T1 (3 s here), and a config without DHCP removes both.
func TestDHCP(t *testing.T) {
	l := nslab.Require(t)
	dnsmasq := testenv.RequireTool(t, "dnsmasq")
	dir := t.TempDir()
	d := l.Start(t, "dnsmasq", dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--port=0", "--user=root",
		"--interface="+nslab.PeerDev, "--bind-interfaces", "--no-ping", "--log-dhcp", "--log-facility=-",
		"--dhcp-range=10.79.0.100,10.79.0.150,255.255.255.0,2m",
		"--dhcp-option=option:router,"+nslab.PeerIP4,
		"--dhcp-option=option:T1,3",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"))
	for !strings.Contains(d.Log(), "DHCP, IP range") {
		select {
		case <-d.Done():
			t.Fatalf("dnsmasq exited:\n%s", d.Log())
		case <-time.After(20 * time.Millisecond):
		}
	}

	static := []string{nslab.SpeakerIP4 + "/24", nslab.SpeakerIP6 + "/64"}
	cfg := Config{Links: []Link{{Name: nslab.SpeakerDev, Addrs: []netip.Prefix{mp(static[0]), mp(static[1])}, DHCP4: true}}}
	m := newManager(t, cfg)
	apply(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)

	start := time.Now()
	var lease *Lease
	for lease = m.Status().Lease; lease == nil; lease = m.Status().Lease {
		if time.Since(start) > 15*time.Second {
			t.Fatalf("no lease within 15 s; status %+v\ndnsmasq:\n%s", m.Status(), d.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("lease %v from %v after %v (router %v, renew %v, expires %v)", lease.Addr, lease.Server,
		time.Since(start).Round(time.Millisecond), lease.Router, lease.Renew.Sub(lease.Obtained), lease.Expires.Sub(lease.Obtained))
	if !strings.HasPrefix(lease.Addr.String(), "10.79.0.1") || lease.Addr.Bits() != 24 || lease.Router != ma(nslab.PeerIP4) {
		t.Errorf("lease %+v", lease)
	}
	want := append([]string{lease.Addr.String()}, static...)
	slices.Sort(want)
	if got := kernelAddrs(t, nslab.SpeakerDev); !slices.Equal(got, want) {
		t.Errorf("%s addresses %v, want %v", nslab.SpeakerDev, got, want)
	}
	dflt := "default via " + nslab.PeerIP4 + " dev " + nslab.SpeakerDev + " metric 1024 proto 53"
	if got := kernelRoutes(t); !slices.Contains(got, dflt) {
		t.Errorf("routes %q lack %q", got, dflt)
	}
	// The address expires with the lease, so that it does not outlive
	// the node.
	if out := ip(t, "-4", "addr", "show", "dev", nslab.SpeakerDev); !strings.Contains(out, "valid_lft 1") {
		t.Errorf("lease address without a finite lifetime:\n%s", out)
	}

	first := lease.Obtained
	for lease = m.Status().Lease; lease == nil || !lease.Obtained.After(first); lease = m.Status().Lease {
		if time.Since(first) > 10*time.Second {
			t.Fatalf("lease not renewed within 10 s (T1 is 3 s); status %+v\ndnsmasq:\n%s", m.Status(), d.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("renewed %v after the lease was obtained", lease.Obtained.Sub(first).Round(time.Millisecond))
	if n := strings.Count(d.Log(), "DHCPACK("+nslab.PeerDev+")"); n < 2 {
		t.Errorf("dnsmasq logged %d DHCPACKs, want 2 (DORA and renewal):\n%s", n, d.Log())
	}

	// DHCP dropped from the config: its address and route go.
	stop()
	cfg.Links[0].DHCP4 = false
	ch := apply(t, newManager(t, cfg))
	t.Logf("without dhcp4: %q", ch)
	if got := kernelAddrs(t, nslab.SpeakerDev); !slices.Equal(got, static) {
		t.Errorf("%s addresses %v, want %v", nslab.SpeakerDev, got, static)
	}
	if got := kernelRoutes(t); slices.Contains(got, dflt) {
		t.Errorf("lease route still there: %q", got)
	}
}
