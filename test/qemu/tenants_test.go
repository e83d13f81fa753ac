package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/tenant"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// hostTenant is one tenant of the host boot: its prefix, its service
// address on the guest's lo, and the host port QEMU forwards to it.
type hostTenant struct {
	name, prefix, addr, zone string
	port                     int
}

func (d hostTenant) zoneText() string {
	return fmt.Sprintf("$ORIGIN %s.\n$TTL 300\n@ IN SOA ns1 host 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A %s\nwww IN TXT \"%s\"\n", d.zone, d.addr, d.name)
}

// hostYAML is the box's config for host mode (tenants.enabled): the same
// name, network, BGP session, tailnet (management: the host's API is on
// it as the node's was) and NTP server as nodeYAML, and de as the config
// file's tenant.
func hostYAML(name string, ntpPort int, controlURL string, de hostTenant) string {
	return fmt.Sprintf(`node:
  name: %s
network:
  links:
    - name: eth0
      addresses: [10.0.2.15/24]
      gateway4: 10.0.2.2
bgp:
  asn: %d
  router_id: 10.0.2.15
  listen: ["0.0.0.0:179"]
  peers:
    - name: bird
      address: 10.0.2.2
      asn: %d
      passive: true
health:
  # Lenient: the emulated guest stalls for a second at a time on a busy
  # machine, and a check failing then would withdraw every tenant at
  # once; only a tenant's own failure may.
  interval: 500ms
  timeout: 500ms
  fall: 6
  rise: 2
  drain: {wait: 1s, linger: 0s}
overlay:
  enabled: true
  control_url: %s
  tags: ["tag:dns"]
  access: {admin: ["tag:ops"]}
system:
  ntp:
    servers: ["10.0.2.2:%d"]
    interval: 1m
  resolvers: ["10.0.2.3:53"]
tenants:
  enabled: true
  udp_sockets: 1
  list:
    - name: %s
      prefixes: [%s]
      addresses: [%s]
      zones: [{origin: %s, file: /perm/config/%s.zone}]
`, name, nodeASN, birdASN, controlURL, ntpPort, de.name, de.prefix, de.addr, de.zone, de.zone)
}

// bootHost boots the disk TestBoot has just used once more, provisioned
// as a host of tenants (tenants.enabled: PID 1 runs host mode instead of
// the node), and runs a tenant's life under our PID 1 and cgroup v2: de
// (from the config file) and nic (added with `ctl tenant add` once the
// API answers) answer through QEMU's network and are announced to BIRD;
// hog, whose zone does not fit its 16 MiB, is killed by the kernel
// through its cgroup v2 memory limit, alone, while de and nic answer on
// with their routes unchanged; hog and nic are removed (withdrawn, their
// addresses gone, the tenant list back to de alone); the box powers off
// cleanly with de still running.
func bootHost(t *testing.T, b *board.Board, disk, dir string, br *bird, bgpPort, ntpPort int, tn *testTailnet) {
	ports, err := refserver.Ports(3)
	if err != nil {
		t.Fatal(err)
	}
	de := hostTenant{name: "de", prefix: "10.53.1.0/24", addr: "10.53.1.53", zone: "de.test", port: ports[0]}
	nic := hostTenant{name: "nic", prefix: "10.53.2.0/24", addr: "10.53.2.53", zone: "nic.test", port: ports[1]}
	hog := hostTenant{name: "hog", prefix: "10.53.3.0/24", addr: "10.53.3.53", zone: "hog.test", port: ports[2]}
	name := "test-" + b.Name // the tailnet identity the node had on this disk
	cfg := hostYAML(name, ntpPort, tn.guestControlURL, de)
	if _, err := config.Parse([]byte(cfg)); err != nil {
		t.Fatalf("host config: %v\n%s", err, cfg)
	}
	im, err := OpenImage(disk)
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"node.yaml": cfg, de.zone + ".zone": de.zoneText()} {
		if err := im.WriteFile(board.PartBoot, "provision/"+name, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	im.Close()
	fwd := []Forward{{"tcp", bgpPort, 179, ""}}
	for _, d := range []hostTenant{de, nic, hog} {
		fwd = append(fwd, Forward{"udp", d.port, 53, d.addr})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bt := startBoot(t, b, disk, filepath.Join(dir, "console-host.log"), fwd)
	c := tn.apiClient(name)
	show := func(name string) tenant.Status {
		t.Helper()
		st, err := c.Tenant(name)
		if err != nil {
			t.Fatalf("tenant %s: %v", name, err)
		}
		return st
	}
	add := func(d hostTenant, zone string, mib int) {
		t.Helper()
		req := tenant.AddRequest{ZoneText: map[string]string{d.zone: zone}}
		req.Name, req.Prefixes, req.Addresses, req.MemoryMB = d.name, []string{d.prefix}, []string{d.addr}, mib
		if _, err := c.AddTenant(req); err != nil {
			t.Fatalf("tenant add %s: %v", d.name, err)
		}
	}
	answers := func(d hostTenant) bool {
		m := new(dns.Msg)
		m.SetQuestion("www."+d.zone+".", dns.TypeTXT)
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, fmt.Sprintf("127.0.0.1:%d", d.port))
		if err != nil || !r.Authoritative || len(r.Answer) != 1 {
			return false
		}
		txt, ok := r.Answer[0].(*dns.TXT)
		return ok && slices.Equal(txt.Txt, []string{d.name})
	}
	announced := func(d hostTenant) bool { return strings.Contains(br.routes(), d.prefix) }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: not after %s; BIRD:\n%s", what, bt.since(), br.routes())
			case <-bt.vm.Done():
				t.Fatalf("QEMU exited while waiting: %s", what)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}

	if _, err := bt.console.WaitFor(ctx, "shoestring starting as PID 1", 0); err != nil {
		t.Fatal(err)
	}
	if err := waitAPI(ctx, c, bt.vm.Done()); err != nil {
		t.Fatalf("the host's management API on the tailnet: %v", err)
	}
	toAPI := bt.since()
	add(nic, nic.zoneText(), 64)
	for _, d := range []hostTenant{de, nic} {
		waitFor(d.name+" answering and announced", func() bool { return answers(d) && announced(d) })
	}
	toTwo := bt.since()

	// Under PID 1: the sandbox whole, the cgroups v2 (PID 1 mounts
	// cgroup2; the image's kernel has every controller there).
	// One slow answer of an emulated guest on a loaded machine (the
	// client's 30 s) is not what this checks: asked again within ctx.
	hs, err := c.Tenants()
	for err != nil && ctx.Err() == nil {
		t.Logf("GET /api/v1/tenants: %v; again", err)
		hs, err = c.Tenants()
	}
	if err != nil {
		t.Fatal(err)
	}
	if hs.Cgroups != "v2" || len(hs.Tenants) != 2 {
		t.Errorf("host: cgroups %q (controllers %v), %d tenants", hs.Cgroups, hs.Controllers, len(hs.Tenants))
	}
	for _, st := range hs.Tenants {
		p := st.Protections
		if p == nil {
			t.Fatalf("%s under PID 1 reported no protections", st.Name)
		}
		missing := p.Missing
		if strings.HasPrefix(p.Landlock, "off: the kernel has no Landlock") {
			// The guest kernel's LSMs decide; reported, and the
			// tenant runs without it.
			t.Logf("%s under PID 1: %s", st.Name, p.Landlock)
			missing = slices.DeleteFunc(slices.Clone(missing), func(m string) bool { return strings.HasPrefix(m, "landlock") })
		} else if !p.WriteOutsideDenied {
			t.Errorf("%s under PID 1: landlock %q, but a write outside its data was not refused", st.Name, p.Landlock)
		}
		if len(missing) > 0 || !p.NoCapabilities || !p.BindDenied || !p.PIDNamespace || st.State != "running" {
			t.Errorf("%s under PID 1: state %s, protections %+v", st.Name, st.State, *p)
		}
		if want := "/sys/fs/cgroup/" + config.DefaultTenantCgroup + "/" + st.Name; !slices.Equal(st.Cgroup, []string{want}) {
			t.Errorf("%s's cgroup %v, want %s", st.Name, st.Cgroup, want)
		}
	}
	routes := br.routes()
	if t.Failed() {
		return
	}

	// hog's zone cannot fit its 16 MiB: the kernel kills it through its
	// cgroup v2 memory.max (memory.events counts oom_kill), alone.
	var zone strings.Builder
	zone.WriteString(hog.zoneText())
	for i := range 60000 {
		fmt.Fprintf(&zone, "h%d IN TXT \"%040d\"\n", i, i)
	}
	oomStart := time.Now()
	add(hog, zone.String(), 16)
	waitFor("hog killed for its memory limit", func() bool { st := show(hog.name); return st.OOMKills > 0 && st.Restarts > 0 })
	hst := show(hog.name)
	oomAfter := time.Since(oomStart)
	if !strings.Contains(hst.LastExit, "killed") || announced(hog) {
		t.Errorf("hog: last exit %q, announced %v", hst.LastExit, announced(hog))
	}
	for _, d := range []hostTenant{de, nic} {
		if !answers(d) {
			t.Errorf("%s stopped answering while hog was killed", d.name)
		}
		if st := show(d.name); st.OOMKills != 0 || st.Restarts != 0 || st.State != "running" {
			t.Errorf("%s while hog died: %d OOM kills, %d restarts, %s", d.name, st.OOMKills, st.Restarts, st.State)
		}
	}
	if now := br.routes(); now != routes {
		t.Errorf("BIRD's routes changed while hog died:\nbefore:\n%s\nafter:\n%s", routes, now)
	}

	// Removed: withdrawn, no longer answering, its address gone from lo,
	// its cgroup and directory gone (the list no longer has it); de goes
	// on.
	removeStart := time.Now()
	for _, d := range []hostTenant{hog, nic} {
		if err := c.RemoveTenant(d.name, false); err != nil {
			t.Fatalf("tenant remove %s: %v", d.name, err)
		}
	}
	removed := time.Since(removeStart)
	waitFor("nic withdrawn", func() bool { return !announced(nic) })
	if answers(nic) {
		t.Error("nic answers after its removal")
	}
	if !answers(de) || !announced(de) {
		t.Error("de lost while nic and hog were removed")
	}
	if hs, err := c.Tenants(); err != nil || len(hs.Tenants) != 1 || hs.Tenants[0].Name != de.name {
		t.Errorf("tenants after remove: %+v %v", hs.Tenants, err)
	}
	var netw api.Network
	if body, err := getBody(c, "/api/v1/routing/network"); err != nil || json.Unmarshal([]byte(body), &netw) != nil {
		t.Errorf("network status: %v %s", err, body)
	} else {
		var lo []string
		for _, l := range netw.Links {
			if l.Name == "lo" {
				lo = l.Addresses
			}
		}
		if slices.Contains(lo, nic.addr+"/32") || slices.Contains(lo, hog.addr+"/32") || !slices.Contains(lo, de.addr+"/32") {
			t.Errorf("addresses on lo after remove: %v, want %s and no other tenant's", lo, de.addr)
		}
	}

	// The box stops host mode cleanly: tenants drained and stopped, data
	// unmounted.
	offStart := time.Now()
	if err := c.Poweroff(); err != nil {
		t.Fatalf("poweroff: %v", err)
	}
	if err := bt.vm.Wait(2 * time.Minute); err != nil {
		t.Fatalf("after poweroff: %v", err)
	}
	off := time.Since(offStart)
	for _, want := range []string{"data partition unmounted cleanly", "reboot: Power down"} {
		if !strings.Contains(bt.console.String(), want) {
			t.Errorf("console after poweroff lacks %q", want)
		}
	}
	t.Logf("%s as a host: management API %s after QEMU start, de (config) and nic (ctl tenant add) answering and announced %s; hog (16 MiB) OOM-killed %s after its add (%d kills, %q); hog and nic removed in %s; poweroff %s",
		b.Name, toAPI, toTwo, oomAfter.Round(10*time.Millisecond), hst.OOMKills, hst.LastExit, removed.Round(10*time.Millisecond), off.Round(10*time.Millisecond))
}

// getBody GETs an API path and returns its body.
func getBody(c *api.Client, path string) (string, error) {
	resp, err := c.HTTP.Get(c.Base + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), err
}
