package qemu

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/image"
	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// testEpoch is the images' build time: the guests boot with their RTC in
// 2001 and must first be set forward to it, then by NTP to now.
func testEpoch() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

const zoneText = `$ORIGIN example.test.
$TTL 300
@    IN SOA ns1 hostmaster 2026010101 3600 900 1209600 300
     IN NS  ns1
ns1  IN A   10.53.0.53
www  IN A   192.0.2.80
`

// uploadedZone is put through the API on the first boot; it lives only in
// the store on the data partition, so answering it on the second boot
// proves the store persisted.
const uploadedZone = `$ORIGIN api.test.
$TTL 300
@    IN SOA ns1 hostmaster 7 3600 900 1209600 300
     IN NS  ns1
ns1  IN A   10.53.0.53
www  IN A   192.0.2.81
`

// nodeYAML is the config provisioned through the boot partition: QEMU's
// user network (guest 10.0.2.15, host 10.0.2.2, DNS 10.0.2.3), the
// anycast service address on lo, a passive BGP session to the host's
// BIRD, the test's tailnet for management (the auth key is provisioned
// beside it), the host's NTP server.
func nodeYAML(name string, ntpPort int, controlURL string) string {
	return fmt.Sprintf(`node:
  name: %s
dns:
  listen: ["10.0.2.15:53", "10.53.0.53:53"]
zones:
  - origin: example.test
    file: /perm/config/example.test.zone
network:
  links:
    - name: eth0
      addresses: [10.0.2.15/24]
      gateway4: 10.0.2.2
  anycast: [10.53.0.53]
bgp:
  asn: %d
  router_id: 10.0.2.15
  listen: ["0.0.0.0:179"]
  peers:
    - name: bird
      address: 10.0.2.2
      asn: %d
      passive: true
  prefixes:
    - prefix: 10.53.0.0/24
health:
  canary: {name: example.test, type: SOA}
  drain: {wait: 1s, linger: 1s}
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
  logs:
    flush_interval: 2s
`, name, nodeASN, birdASN, controlURL, ntpPort)
}

// requireTools skips (or fails under CI) without what a boot needs.
func requireTools(t *testing.T, boards ...*board.Board) {
	t.Helper()
	for _, b := range boards {
		testenv.RequireTool(t, b.QEMU.Binary)
	}
	for _, tool := range []string{"apt-get", "dpkg-deb", "bird", "birdc"} {
		testenv.RequireTool(t, tool)
	}
}

// buildImage builds a board's image into out (downloads cached in the
// repository's out/cache, as make image does).
func buildImage(t *testing.T, b *board.Board, out string) *image.Result {
	t.Helper()
	start := time.Now()
	var log testenv.SyncBuffer
	res, err := image.Build(context.Background(), image.Options{
		Board: b, Repo: testenv.RepoRoot(), Out: out, Cache: filepath.Join(testenv.RepoRoot(), "out", "cache"),
		Version: "qemu-test", Epoch: testEpoch(), Log: &log,
	})
	if err != nil {
		t.Fatalf("building the %s image: %v\n%s", b.Name, err, log.String())
	}
	t.Logf("%s image built in %s:\n%s", b.Name, time.Since(start).Round(time.Second), log.String())
	return res
}

// TestBoot boots the qemu-amd64 and qemu-arm64 images twice each (and
// qemu-amd64 a third time as a host of tenants: tenants_test.go): the
// first boot provisions the node from the boot partition, makes the data
// partition, serves the zone on a forwarded port, reaches BGP Established
// with BIRD, answers its management API, takes a zone upload, and powers
// off cleanly on request; the second boot of the same disk still has both
// zones (on qemu-arm64, a million-record zone too: bigzone_test.go).
//
// SHOESTRING_QEMU_BOARDS=qemu-arm64 limits it to some boards, or adds the
// optional, slower ones: atom386 (SeaBIOS, GRUB from the MBR gap, a 32-bit
// kernel on an emulated N270).
func TestBoot(t *testing.T) {
	names := []string{"qemu-amd64", "qemu-arm64"}
	if s := os.Getenv("SHOESTRING_QEMU_BOARDS"); s != "" {
		names = strings.Split(s, ",")
	}
	boards := []*board.Board{}
	for _, n := range names {
		b, err := board.Get(n)
		if err != nil {
			t.Fatal(err)
		}
		boards = append(boards, b)
	}
	requireTools(t, boards...)
	if slices.ContainsFunc(boards, func(b *board.Board) bool { return b.Name == "qemu-arm64" }) {
		// The big zone's store goes onto the data partition (bigzone_test.go).
		testenv.RequireTool(t, "debugfs")
		testenv.RequireTool(t, "e2fsck")
	}
	tn := startTailnet(t)
	out := filepath.Join(testenv.RepoRoot(), "out", "test")
	// Built one after the other: they share the download cache.
	results := map[string]*image.Result{}
	for _, b := range boards {
		results[b.Name] = buildImage(t, b, out)
	}
	for _, b := range boards {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			bootTwice(t, b, results[b.Name], tn)
		})
	}
}

// boot is one boot of a disk, with the console kept in a file and shown
// if the test fails.
type boot struct {
	t       *testing.T
	vm      *VM
	console *LineWaiter
	api     *api.Client
	dnsAddr string
}

func startBoot(t *testing.T, b *board.Board, disk, consoleFile string, fwd []Forward) *boot {
	t.Helper()
	f, err := os.Create(consoleFile)
	if err != nil {
		t.Fatal(err)
	}
	w := NewLineWaiter(f)
	vm := &VM{Board: b, Disk: disk, Console: w, Forwards: fwd, Dir: t.TempDir(),
		// Boxes without a battery boot in the past; the clock must cope.
		Extra: []string{"-rtc", "base=2001-01-01T00:00:00"}}
	if err := vm.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		f.Close()
		if t.Failed() {
			t.Logf("console (%s):\n%s", consoleFile, w.String())
		}
	})
	return &boot{t: t, vm: vm, console: w}
}

// since is the time since QEMU started.
func (bt *boot) since() time.Duration { return time.Since(bt.vm.Started).Round(10 * time.Millisecond) }

// waitAnswer queries name A until the node answers it authoritatively
// with want.
func (bt *boot) waitAnswer(ctx context.Context, name, want string) error {
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	var last string
	for {
		r, _, err := c.ExchangeContext(ctx, m, bt.dnsAddr)
		if err == nil && r.Authoritative && len(r.Answer) == 1 {
			if a, ok := r.Answer[0].(*dns.A); ok && a.A.String() == want {
				return nil
			}
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%s aa=%v %v", dns.RcodeToString[r.Rcode], r.Authoritative, r.Answer)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer for %s (last: %s): %w", name, last, ctx.Err())
		case <-bt.vm.Done():
			return fmt.Errorf("QEMU exited while waiting for %s", name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (bt *boot) waitBGP(ctx context.Context, br *bird) error {
	for !br.established() {
		select {
		case <-ctx.Done():
			out, _ := br.birdc("show", "protocols", "all", "node")
			return fmt.Errorf("BGP not established: %w\n%s", ctx.Err(), out)
		case <-bt.vm.Done():
			return fmt.Errorf("QEMU exited while waiting for BGP")
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// poweroff asks the node to power off and waits for QEMU to exit.
func (bt *boot) poweroff(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	if err := bt.api.Poweroff(); err != nil {
		t.Fatalf("poweroff: %v", err)
	}
	if err := bt.vm.Wait(2 * time.Minute); err != nil {
		t.Fatalf("after poweroff: %v", err)
	}
	took := time.Since(start).Round(10 * time.Millisecond)
	out := bt.console.String()
	for _, want := range []string{"drained", "node stopped", "data partition unmounted cleanly", "reboot: Power down"} {
		if !strings.Contains(out, want) {
			t.Errorf("console after poweroff lacks %q", want)
		}
	}
	return took
}

func bootTwice(t *testing.T, b *board.Board, res *image.Result, tn *testTailnet) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	// The image written to a 1 GiB card: the data partition must grow.
	if err := CopyDisk(res.Disk, disk, 1<<30); err != nil {
		t.Fatal(err)
	}
	// Provision as an operator would: files into the boot partition's
	// provision folder.
	ntpPort := ntpServer(t)
	im, err := OpenImage(disk)
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"node.yaml":         nodeYAML("test-"+b.Name, ntpPort, tn.guestControlURL),
		"example.test.zone": zoneText,
		"tailnet.authkey":   tailnetKey + "\n",
	} {
		if err := im.WriteFile(board.PartBoot, "provision/"+name, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	im.Close()

	ports, err := refserver.Ports(2)
	if err != nil {
		t.Fatal(err)
	}
	dnsPort, bgpPort := ports[0], ports[1]
	fwd := []Forward{{"udp", dnsPort, 53, ""}, {"tcp", dnsPort, 53, ""}, {"tcp", bgpPort, 179, ""}}
	br := startBIRD(t, bgpPort)

	// First boot.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bt := startBoot(t, b, disk, filepath.Join(dir, "console-1.log"), fwd)
	bt.dnsAddr = fmt.Sprintf("127.0.0.1:%d", dnsPort)
	bt.api = tn.apiClient("test-" + b.Name)
	if !b.QEMU.Firmware && bt.vm.Slot.Slot != "A" {
		t.Errorf("harness booted slot %s, want A", bt.vm.Slot.Slot)
	}
	if _, err := bt.console.WaitFor(ctx, "shoestring starting as PID 1", 0); err != nil {
		t.Fatal(err)
	}
	toInit := bt.since()
	if err := bt.waitAnswer(ctx, "www.example.test.", "192.0.2.80"); err != nil {
		t.Fatal(err)
	}
	toAnswer := bt.since()
	if err := bt.waitBGP(ctx, br); err != nil {
		t.Fatal(err)
	}
	toBGP := bt.since()
	// The node announces its prefix once its health checks pass.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(br.routes(), "10.53.0.0/24") {
		if time.Now().After(deadline) {
			t.Fatalf("BIRD did not learn 10.53.0.0/24:\n%s", br.routes())
		}
		time.Sleep(200 * time.Millisecond)
	}
	toRoute := bt.since()

	if err := waitAPI(ctx, bt.api, bt.vm.Done()); err != nil {
		t.Fatalf("management API over the tailnet: %v", err)
	}
	toAPI := bt.since()
	sys, err := bt.api.System()
	if err != nil {
		t.Fatalf("management API: %v", err)
	}
	if sys.Board != b.Name || sys.Slot != "A" || sys.Version != "qemu-test" {
		t.Errorf("system: board %q slot %q version %q", sys.Board, sys.Slot, sys.Version)
	}
	// The partition starts 577 MiB into the 1 GiB disk, so grown it holds
	// over 400 MiB (64 MiB as built).
	if sys.Data.Problem != "" || sys.Data.Size < 400<<20 {
		t.Errorf("data partition not grown to the 1 GiB disk: %+v", sys.Data)
	}
	if !slices.Contains(sys.Provisioned, "node.yaml") || !slices.Contains(sys.Provisioned, "tailnet.authkey") || sys.Config != "/perm/config/node.yaml" {
		t.Errorf("provisioning: took %v, config from %q", sys.Provisioned, sys.Config)
	}
	if !sys.Watchdog.Armed || sys.Watchdog.Starved != "" {
		t.Errorf("watchdog: %+v", sys.Watchdog)
	}
	// The clock: the guest's RTC says 2001; NTP from the host sets it.
	deadline = time.Now().Add(90 * time.Second)
	for !sys.Clock.Synced && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		sys, _ = bt.api.System()
	}
	if !sys.Clock.Synced {
		t.Errorf("clock never synchronised: %+v", sys.Clock)
	}
	if d, err := guestClock(bt.api); err != nil || d.Abs() > 5*time.Second {
		t.Errorf("guest clock off by %v (%v)", d, err)
	}
	if !strings.Contains(bt.console.String(), "source=\"image build time\"") {
		t.Errorf("the clock was not set forward to the image's build time at boot")
	}
	logs, err := bt.api.SystemLogs(0, 0, false)
	if err != nil || !strings.Contains(fmt.Sprint(logs.Lines), "node answering") || !strings.Contains(fmt.Sprint(logs.Lines), "kernel: ") {
		t.Errorf("logs through the API lack the node's and the kernel's lines (%v)", err)
	}
	st, err := bt.api.Status()
	if err != nil {
		t.Fatal(err)
	}
	rss := st.Memory.RSS
	if _, err := bt.api.PutZone("api.test", []byte(uploadedZone)); err != nil {
		t.Fatalf("zone upload: %v", err)
	}
	// The log persisted to the data partition is readable through the API
	// (within 3 s).
	disklog, err := bt.api.SystemLogs(50, 0, true)
	for deadline := time.Now().Add(3 * time.Second); (err != nil || len(disklog.Disk) == 0) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		disklog, err = bt.api.SystemLogs(50, 0, true)
	}
	if err != nil || len(disklog.Disk) == 0 {
		t.Errorf("persisted log: %v, %d lines", err, len(disklog.Disk))
	}
	off1 := bt.poweroff(t)
	bootLog := bt.console.String()

	// The boot partition: provisioned files gone (secrets do not stay on
	// FAT), the README and a receipt left.
	im, err = OpenImage(disk)
	if err != nil {
		t.Fatal(err)
	}
	left, lerr := im.List(board.PartBoot, "provision")
	if lerr != nil {
		t.Errorf("listing provision/: %v", lerr)
	}
	receipt, rerr := im.ReadFile(board.PartBoot, "provisioned.txt")
	im.Close()
	if !slices.Equal(left, []string{"README.txt"}) || rerr != nil || !strings.Contains(string(receipt), "node.yaml") {
		t.Errorf("boot partition after provisioning: provision/ %v, receipt %q (%v)", left, receipt, rerr)
	}

	// qemu-arm64's store gets a million-record zone before the second
	// boot (bigzone_test.go).
	var big *bigZone
	if b.Name == "qemu-arm64" {
		big = addBigZone(t, disk, dir)
	}

	// Second boot of the same disk: both zones are still there, the clock
	// comes back from the saved time.
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bt2 := startBoot(t, b, disk, filepath.Join(dir, "console-2.log"), fwd)
	bt2.dnsAddr, bt2.api = bt.dnsAddr, bt.api
	if err := bt2.waitAnswer(ctx, "www.api.test.", "192.0.2.81"); err != nil {
		t.Fatal(err)
	}
	toAnswer2 := bt2.since()
	if big != nil {
		big.answers(ctx, t, bt2)
	}
	if err := bt2.waitAnswer(ctx, "www.example.test.", "192.0.2.80"); err != nil {
		t.Fatal(err)
	}
	if err := bt2.waitBGP(ctx, br); err != nil {
		t.Fatal(err)
	}
	toBGP2 := bt2.since()
	// The node logs back in to the tailnet with the keys it kept.
	if err := waitAPI(ctx, bt2.api, bt2.vm.Done()); err != nil {
		t.Fatalf("second boot: management API over the tailnet: %v", err)
	}
	sys2, err := bt2.api.System()
	if err != nil {
		t.Fatal(err)
	}
	if len(sys2.Provisioned) != 0 || sys2.Config != "/perm/config/node.yaml" {
		t.Errorf("second boot: provisioned %v, config %q", sys2.Provisioned, sys2.Config)
	}
	if !strings.Contains(bt2.console.String(), "source=\"last saved time\"") {
		t.Errorf("second boot did not restore the saved clock")
	}
	if big != nil {
		big.memory(t, bt2, sys2)
	}
	off2 := bt2.poweroff(t)
	if b.Name == "qemu-amd64" {
		// The same disk once more, as a host of tenants (one boot).
		t.Run("tenants", func(t *testing.T) { bootHost(t, b, disk, dir, br, bgpPort, ntpPort, tn) })
	}

	t.Logf("%s: first boot: init at %s, first answer %s, BGP Established %s, route at BIRD %s, API on the tailnet %s; poweroff %s; QEMU CPU %s; RSS after boot %.1f MiB; guest memory %.0f MiB, %.0f MiB available",
		b.Name, toInit, toAnswer, toBGP, toRoute, toAPI, off1, bt.vm.CPU.Round(10*time.Millisecond), float64(rss)/(1<<20), float64(sys.MemTotal)/(1<<20), float64(sys.MemFree)/(1<<20))
	t.Logf("%s: second boot: first answer %s, BGP Established %s; poweroff %s; QEMU CPU %s", b.Name, toAnswer2, toBGP2, off2, bt2.vm.CPU.Round(10*time.Millisecond))
	if testing.Verbose() {
		t.Logf("first boot console:\n%s", bootLog)
		t.Logf("second boot console:\n%s", bt2.console.String())
	}
}

// guestClock returns how far the guest's clock (its HTTP Date header) is
// from ours.
func guestClock(c *api.Client) (time.Duration, error) {
	resp, err := c.HTTP.Get(c.Base + "/healthz")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	t, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return 0, err
	}
	return time.Until(t), nil
}
