package netconf

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/nslab"
)

// The tests change links, addresses, routes and sysctls, so they run in
// nslab's namespace (see package nslab), never in the machine's own.
func TestMain(m *testing.M) { os.Exit(nslab.Main(m, "ssnet")) }

func ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// kernelAddrs reads a link's addresses with iproute2, independently of the
// code under test.
func kernelAddrs(t *testing.T, link string) []string {
	t.Helper()
	var links []struct {
		Flags    []string `json:"flags"`
		MTU      int      `json:"mtu"`
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
			Scope     string `json:"scope"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(ip(t, "-j", "addr", "show", "dev", link)), &links); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range links[0].AddrInfo {
		if a.Scope == "link" {
			continue
		}
		out = append(out, netip.PrefixFrom(netip.MustParseAddr(a.Local), a.PrefixLen).String())
	}
	slices.Sort(out)
	return out
}

func linkState(t *testing.T, link string) (up bool, mtu int) {
	t.Helper()
	var links []struct {
		Flags []string `json:"flags"`
		MTU   int      `json:"mtu"`
	}
	if err := json.Unmarshal([]byte(ip(t, "-j", "link", "show", "dev", link)), &links); err != nil {
		t.Fatal(err)
	}
	return slices.Contains(links[0].Flags, "UP"), links[0].MTU
}

// kernelRoutes lists "dst via gw dev link metric m proto p" for the main
// table of both families.
func kernelRoutes(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, fam := range []string{"-4", "-6"} {
		var rs []struct {
			Dst      string `json:"dst"`
			Gateway  string `json:"gateway"`
			Dev      string `json:"dev"`
			Metric   int    `json:"metric"`
			Protocol string `json:"protocol"`
		}
		if err := json.Unmarshal([]byte(ip(t, fam, "-j", "route", "show", "table", "main")), &rs); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Protocol == "kernel" {
				continue
			}
			s := r.Dst
			if r.Gateway != "" {
				s += " via " + r.Gateway
			}
			s += " dev " + r.Dev
			if r.Metric != 0 {
				s += " metric " + strconv.Itoa(r.Metric)
			}
			out = append(out, s+" proto "+r.Protocol)
		}
	}
	slices.Sort(out)
	return out
}

func readSysctl(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// veth makes a veth pair in the test namespace with the far end up (so
// the near end has carrier) and removes it when the test ends.
func veth(t *testing.T, near, far string) {
	t.Helper()
	exec.Command("ip", "link", "del", near).Run()
	ip(t, "link", "add", near, "type", "veth", "peer", "name", far)
	ip(t, "link", "set", far, "up")
	t.Cleanup(func() { exec.Command("ip", "link", "del", near).Run() })
}

func mp(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ma(s string) netip.Addr   { return netip.MustParseAddr(s) }

func fullConfig() Config {
	return Config{
		Links: []Link{{
			Name: "t0", MTU: 1400,
			Addrs:    []netip.Prefix{mp("10.81.0.1/24"), mp("10.81.1.1/24"), mp("fd81::1/64")},
			Gateway4: ma("10.81.0.254"), Gateway6: ma("fd81::fe"),
		}},
		Routes: []Route{
			{Dst: mp("10.82.0.0/16"), Via: ma("10.81.0.2")},
			{Dst: mp("10.83.0.0/24"), Link: "t0", Metric: 20},
			{Dst: mp("fd82::/48"), Via: ma("fd81::2"), Link: "t0"},
		},
		Anycast:      []netip.Addr{ma("10.53.0.53"), ma("fd53::53")},
		NonlocalBind: true,
		Sysctls:      map[string]string{"net.ipv4.tcp_syn_retries": "4"},
	}
}

func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func apply(t *testing.T, m *Manager) []string {
	t.Helper()
	ch, err := m.Apply()
	if err != nil {
		t.Fatalf("Apply: %v (changes %q)", err, ch)
	}
	return ch
}

// TestApplyReconciles: the first Apply brings the box to the config and
// undoes drift in what it owns; a second Apply (and a fresh Manager's)
// changes nothing; dropping an address, an anycast address and a route
// from the config removes them from the box; what is not ours stays.
func TestApplyReconciles(t *testing.T) {
	nslab.Require(t)
	veth(t, "t0", "t1")
	veth(t, "t2", "t3")
	ip(t, "addr", "add", "10.90.0.1/24", "dev", "t2") // unmanaged link
	ip(t, "addr", "add", "10.81.9.9/24", "dev", "t0") // drift on a managed link
	ip(t, "addr", "add", "192.0.2.1/32", "dev", "lo") // drift on lo
	ip(t, "link", "set", "t2", "up", "mtu", "1300")
	ip(t, "route", "add", "10.84.0.0/16", "dev", "t2", "proto", "static")
	ip(t, "link", "set", "t0", "up")
	ip(t, "route", "add", "10.85.0.0/16", "dev", "t0", "proto", "53") // ours, not configured
	t.Cleanup(func() {
		for _, a := range []string{"10.53.0.53/32", "fd53::53/128", "192.0.2.1/32"} {
			exec.Command("ip", "addr", "del", a, "dev", "lo").Run()
		}
	})
	for _, s := range []string{"net/ipv4/ip_nonlocal_bind", "net/ipv6/ip_nonlocal_bind"} {
		os.WriteFile("/proc/sys/"+s, []byte("0"), 0o644)
	}
	ip(t, "link", "set", "lo", "down")

	m := newManager(t, fullConfig())
	ch := apply(t, m)
	t.Logf("first Apply: %d changes:\n  %s", len(ch), strings.Join(ch, "\n  "))

	if up, mtu := linkState(t, "t0"); !up || mtu != 1400 {
		t.Errorf("t0: up %v mtu %d, want up, 1400", up, mtu)
	}
	if up, _ := linkState(t, "lo"); !up {
		t.Error("lo is down")
	}
	if got, want := kernelAddrs(t, "t0"), []string{"10.81.0.1/24", "10.81.1.1/24", "fd81::1/64"}; !slices.Equal(got, want) {
		t.Errorf("t0 addresses %v, want %v", got, want)
	}
	if got, want := kernelAddrs(t, "lo"), []string{"10.53.0.53/32", "127.0.0.1/8", "::1/128", "fd53::53/128"}; !slices.Equal(got, want) {
		t.Errorf("lo addresses %v, want %v", got, want)
	}
	if got, want := kernelAddrs(t, "t2"), []string{"10.90.0.1/24"}; !slices.Equal(got, want) {
		t.Errorf("unmanaged t2 addresses %v, want %v", got, want)
	}
	if _, mtu := linkState(t, "t2"); mtu != 1300 {
		t.Errorf("unmanaged t2: mtu changed to %d", mtu)
	}
	wantRoutes := []string{
		"10.82.0.0/16 via 10.81.0.2 dev t0 proto 53",
		"10.83.0.0/24 dev t0 metric 20 proto 53",
		"10.84.0.0/16 dev t2 proto static",
		"default via 10.81.0.254 dev t0 proto 53",
		"default via fd81::fe dev t0 metric 1024 proto 53",
		"fd82::/48 via fd81::2 dev t0 metric 1024 proto 53",
	}
	if got := kernelRoutes(t); !slices.Equal(got, wantRoutes) {
		t.Errorf("routes:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantRoutes, "\n  "))
	}
	for path, want := range map[string]string{
		"net/ipv4/ip_nonlocal_bind":            "1",
		"net/ipv6/ip_nonlocal_bind":            "1",
		"net/ipv6/conf/t0/accept_ra":           "0",
		"net/ipv6/conf/t0/autoconf":            "0",
		"net/ipv4/conf/t0/promote_secondaries": "1",
		"net/ipv4/tcp_syn_retries":             "4",
		// An unmanaged link keeps the namespace's defaults.
		"net/ipv6/conf/t2/accept_ra": readSysctl(t, "net/ipv6/conf/default/accept_ra"),
	} {
		if got := readSysctl(t, path); got != want {
			t.Errorf("%s = %s, want %s", path, got, want)
		}
	}

	if ch := apply(t, m); len(ch) != 0 {
		t.Errorf("second Apply changed %q", ch)
	}
	if ch := apply(t, newManager(t, fullConfig())); len(ch) != 0 {
		t.Errorf("a fresh Manager's Apply changed %q", ch)
	}

	less := fullConfig()
	less.Links[0].Addrs = less.Links[0].Addrs[:1:1]
	less.Links[0].Addrs = append(less.Links[0].Addrs, mp("fd81::1/64"))
	less.Anycast = less.Anycast[:1]
	less.Routes = less.Routes[1:]
	ch = apply(t, newManager(t, less))
	slices.Sort(ch)
	wantCh := []string{
		"address 10.81.1.1/24 removed from t0",
		"address fd53::53/128 removed from lo",
		"route 10.82.0.0/16 via 10.81.0.2 dev t0 removed",
	}
	if !slices.Equal(ch, wantCh) {
		t.Errorf("Apply after removals changed %q, want %q", ch, wantCh)
	}
	if got, want := kernelAddrs(t, "t0"), []string{"10.81.0.1/24", "fd81::1/64"}; !slices.Equal(got, want) {
		t.Errorf("t0 addresses %v, want %v", got, want)
	}
	if got, want := kernelAddrs(t, "lo"), []string{"10.53.0.53/32", "127.0.0.1/8", "::1/128"}; !slices.Equal(got, want) {
		t.Errorf("lo addresses %v, want %v", got, want)
	}
	if slices.Contains(kernelRoutes(t), wantRoutes[0]) {
		t.Error("route 10.82.0.0/16 still present")
	}
}

// TestRunRestoresLink: Run notices a managed link going down (which takes
// its routes with it) and re-applies within a second or so, without
// waiting for the periodic reconcile.
func TestRunRestoresLink(t *testing.T) {
	nslab.Require(t)
	veth(t, "t0", "t1")
	cfg := fullConfig()
	cfg.Reconcile = time.Hour
	m := newManager(t, cfg)
	apply(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(100 * time.Millisecond) // let the subscription start

	ip(t, "link", "set", "t0", "down")
	downAt := time.Now()
	if slices.Contains(kernelRoutes(t), "default via 10.81.0.254 dev t0 proto 53") {
		t.Fatal("the kernel kept the default route of a link set down; the test proves nothing")
	}
	for !slices.Contains(kernelRoutes(t), "default via 10.81.0.254 dev t0 proto 53") {
		if time.Since(downAt) > 5*time.Second {
			t.Fatalf("default route not restored within 5 s; routes %q", kernelRoutes(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("link set down: up again with its routes after %v", time.Since(downAt).Round(time.Millisecond))
	if up, _ := linkState(t, "t0"); !up {
		t.Error("t0 still down")
	}
	if st := m.Status(); st.LastError != "" || len(st.Links) != 2 || !st.Links[1].Up {
		t.Errorf("status %+v", st)
	}
}

// TestConfigRejected: configs that cannot be applied are refused by New.
func TestConfigRejected(t *testing.T) {
	for _, c := range []Config{
		{Links: []Link{{Name: "lo"}}},
		{Links: []Link{{Name: "a"}, {Name: "a"}}},
		{Links: []Link{{Name: "a", DHCP4: true}, {Name: "b", DHCP4: true}}},
		{Routes: []Route{{Dst: mp("10.0.0.0/8")}}},
		{Routes: []Route{{Dst: mp("10.0.0.0/8"), Link: "nope"}}},
		{Routes: []Route{{Dst: mp("10.0.0.0/8"), Via: ma("fd00::1")}}},
		{Anycast: []netip.Addr{ma("127.0.0.2")}},
	} {
		if _, err := c.normalize(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
