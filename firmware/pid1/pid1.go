package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/host"
	"github.com/shoestring-dns/shoestring/firmware/node"
)

// box is PID 1's state.
type box struct {
	version string
	log     *slog.Logger
	ring    *logRing
	logFile *logFile // nil without a data partition

	board board.Runtime
	args  bootArgs
	hw    *hardware

	disk        string // the boot disk
	dataDev     string // the data partition, when mounted
	dataProblem string
	// onTrial: this boot is an OTA trial (RecordBoot said so): the
	// watchdog's boot grace is cut short (startWatchdog).
	onTrial bool

	cfg         *config.Config
	cfgSource   string
	provisioned []string

	wd    *watchdog // nil without a watchdog
	clock *clockSync

	services     *supervisor // everything but the node
	stopServices context.CancelFunc
	nodeSup      *supervisor
	stopNode     context.CancelFunc
	bootToServe  atomic.Int64 // ns from kernel start to the node's first answer

	power chan powerRequest
}

// Main is PID 1. It does not return.
func Main(version string) {
	b := &box{version: version, power: make(chan powerRequest, 1)}
	if err := mountEarly(); err != nil {
		fmt.Fprintln(os.Stderr, "shoestring: pid1:", err)
	}
	if err := reopenConsole(); err != nil {
		fmt.Fprintln(os.Stderr, "shoestring: pid1: console:", err)
	}
	b.ring = newLogRing(config.DefaultLogRingKiB << 10)
	b.log = newLogger(b.ring, os.Stderr)
	go reapZombies(context.Background())
	defer func() {
		// Only a bug gets here; a PID 1 that returns panics the kernel.
		b.log.Error("pid1: main returned; rebooting")
		kernelPower("reboot", "")
	}()
	b.boot()
	r := <-b.power
	b.shutdown(r)
}

// boot brings the box up to serving; problems are logged and worked
// around wherever the box can still serve.
func (b *box) boot() {
	var err error
	if b.board, err = readBoard(); err != nil {
		b.log.Warn("no board description; generic defaults", "err", err)
	}
	b.log.Info("shoestring starting as PID 1", "version", b.version, "board", b.board.Name, "kernel", kernelRelease(),
		"since_kernel_start", time.Since(bootTime()).Round(time.Millisecond))
	setHostname("shoestring")
	// The clock never starts before the image was built.
	raiseClock(time.Unix(b.board.BuildTime, 0), "image build time", b.log)
	var cmdline string
	if b.args, cmdline, err = readCmdline(); err != nil {
		b.log.Warn("kernel command line", "err", err, "cmdline", cmdline)
	}
	if err := loopbackUp(); err != nil {
		b.log.Error("lo", "err", err)
	}

	ctx := context.Background()
	if b.hw, err = newHardware(b.log); err != nil {
		b.log.Error("no kernel modules index; drivers must be built in", "err", err)
	} else {
		b.hw.load(b.board.Load...)
		if !b.hw.settle(ctx, 20*time.Second, func() bool { d, err := findDisk(b.args.DiskID); b.disk = d; return err == nil }) {
			b.disk = ""
		}
	}
	b.setupData()
	if b.disk == "" && b.args.DiskID != 0 {
		b.restartForMissingDisk()
	}

	b.cfg, b.cfgSource = loadNodeConfig(configFile, b.log)
	if b.dataDev == "" {
		// No data partition: keep the store in RAM so the node still
		// serves what it is given, and say so.
		b.cfg.DataDir = "/run/shoestring"
	}
	// A provisioned tailnet auth key is where provisioning put it.
	if o := &b.cfg.Overlay; o.AuthKey == "" && o.AuthKeyFile == "" {
		if _, err := os.Stat(authKeyFile); err == nil {
			o.AuthKeyFile = authKeyFile
		}
	}
	sys := b.cfg.System
	b.ring.setMax(sys.Logs.RingKiB << 10)
	if err := setHostname(sys.Hostname); err != nil {
		b.log.Warn("host name", "err", err)
	}
	if err := writeResolvConf(sys.Resolvers); err != nil {
		b.log.Warn("resolv.conf", "err", err)
	}
	if b.hw != nil {
		nics := b.wantedNICs()
		if !b.hw.settle(ctx, 15*time.Second, func() bool { return allPresent(nics) }) {
			var missing []string
			for _, n := range nics {
				if !linkPresent(n) {
					missing = append(missing, n)
				}
			}
			b.log.Error("network interfaces missing; serving on the others", "missing", missing)
		}
	}
	b.startWatchdog()
	b.startServices()
	b.startNode()
	go b.watchSignals(ctx)
}

// missingDiskRestart is how long a box whose boot disk is missing runs
// before it restarts: long enough for the console to show why.
const missingDiskRestart = 10 * time.Second

// restartForMissingDisk restarts a box that cannot see the disk the boot
// loader loaded it from (shoestring.disk=): its config, slot state and
// data are all there, so a firmware that cannot see it — a storage
// driver missing from a new image, the usual way a kernel update fails —
// would serve nothing it was given, and its health (answering its own
// queries) would keep the watchdog fed for ever. Restarting lets the
// boot loader go back to the committed slot (a trial's try is spent);
// on the committed slot it tries again, which is all a box with a dead
// disk can do. Without shoestring.disk (a disk-less dev boot) the node
// runs on from RAM.
func (b *box) restartForMissingDisk() {
	b.log.Error("the disk this firmware was loaded from is missing: restarting so the boot loader can go back to the committed slot",
		"disk", fmt.Sprintf("%08x", b.args.DiskID), "slot", b.args.Slot, "in", missingDiskRestart)
	time.AfterFunc(missingDiskRestart, func() {
		b.requestPower(powerRequest{action: "reboot", reason: "boot disk missing"})
	})
}

// setupData finds, prepares and mounts the data partition, then does
// what needs it: crash output, the saved clock, log persistence,
// provisioning.
func (b *box) setupData() {
	if b.disk == "" {
		b.dataProblem = fmt.Sprintf("no boot disk (MBR signature %08x) found", b.args.DiskID)
		b.log.Error("data partition unavailable; data kept in RAM", "why", b.dataProblem)
		return
	}
	b.log.Info("boot disk", "device", b.disk, "slot", b.args.Slot)
	dev, err := prepareData(b.disk, b.log)
	if err == nil {
		err = mountData(dev)
	}
	if err != nil {
		b.dataProblem = err.Error()
		b.log.Error("data partition unavailable; data kept in RAM", "err", err)
		return
	}
	b.dataDev = dev
	size, free := statData()
	b.log.Info("data partition mounted", "device", dev, "on", permDir, "size", humanBytes(size), "free", humanBytes(free))
	keepCrashes(b.log)
	if t, err := readSavedClock(clockFile()); err == nil {
		raiseClock(t, "last saved time", b.log)
	}
	taken, err := provision(partitionDevice(b.disk, board.PartBoot), configDir, b.log)
	if err != nil {
		b.log.Error("provisioning", "err", err)
	}
	if len(taken) > 0 {
		b.provisioned = taken
		b.log.Info("provisioned from the boot partition", "files", taken, "to", configDir)
	}
	b.recordBoot()
}

// wantedNICs are the interfaces to wait for: the config's links, or the
// board's.
func (b *box) wantedNICs() []string {
	var nics []string
	for _, l := range b.cfg.Network.Links {
		nics = append(nics, l.Name)
	}
	if len(nics) == 0 {
		nics = b.board.NICs
	}
	return slices.Compact(slices.Sorted(slices.Values(nics)))
}

func allPresent(nics []string) bool {
	for _, n := range nics {
		if !linkPresent(n) {
			return false
		}
	}
	return true
}

// startWatchdog arms the hardware watchdog unless there is none or it is
// turned off.
func (b *box) startWatchdog() {
	dev := b.cfg.System.Watchdog.Device
	if dev == "" {
		dev = b.board.Watchdog
	}
	if dev == "" || dev == "off" {
		b.log.Warn("no hardware watchdog")
		return
	}
	w := &watchdog{dev: dev, timeout: time.Duration(b.cfg.System.Watchdog.Timeout),
		grace: time.Duration(b.cfg.System.Watchdog.BootGrace), log: b.log}
	if b.onTrial {
		// A trial that is not serving by the time its soak would have
		// decided (two soaks after the node is up) has failed anyway:
		// a hang is reset then, not after the whole boot grace, and the
		// boot loader falls back.
		if g := trialGrace(time.Duration(b.cfg.OTA.Soak)); g < w.grace {
			w.grace = g
		}
	}
	if err := w.open(); err != nil {
		b.log.Error("watchdog not armed", "device", dev, "err", err)
		return
	}
	b.wd = w
}

// startServices starts everything but the node under supervision.
func (b *box) startServices() {
	ctx, cancel := context.WithCancel(context.Background())
	b.stopServices = cancel
	b.services = newSupervisor(b.log)
	sys := b.cfg.System
	if b.wd != nil {
		b.services.start(ctx, "watchdog", b.wd.run)
	}
	if b.dataDev != "" {
		b.logFile = newLogFile(b.ring, logDir, int64(sys.Logs.FileKiB)<<10, time.Duration(sys.Logs.FlushInterval), int64(sys.Logs.WriteKiBPerHour)<<10)
		b.services.start(ctx, "logfile", b.logFile.run)
		b.services.start(ctx, "clock", func(ctx context.Context) error { return keepClock(ctx, 15*time.Minute) })
	}
	if *sys.Logs.Kernel {
		b.services.start(ctx, "kmsg", func(ctx context.Context) error { return copyKernelLog(ctx, b.ring) })
	}
	b.clock = newClockSync(sys.NTP.Servers, time.Duration(sys.NTP.Interval), b.log)
	if !sys.NTP.Disabled {
		b.services.start(ctx, "ntp", b.clock.run)
	}
	if b.hw != nil {
		b.services.start(ctx, "modules", b.hw.rescan)
	}
}

// startNode runs the node under supervision. Its context is separate:
// on a planned stop it is cancelled first, so the node drains while the
// box's services (the watchdog, logs) still run.
func (b *box) startNode() {
	ctx, cancel := context.WithCancel(context.Background())
	b.stopNode = cancel
	b.nodeSup = newSupervisor(b.log)
	ota, otaOff := b.otaLayout()
	if ota == nil {
		b.log.Warn("over-the-air updates off", "why", otaOff)
	} else {
		b.log.Info("over-the-air updates on", "method", ota.Method, "booted", ota.Booted)
	}
	if b.cfg.Tenants.Enabled {
		b.startHost(ctx)
		return
	}
	b.nodeSup.start(ctx, "node", func(ctx context.Context) error {
		n := node.New(node.Options{
			Config:      b.cfg,
			Logger:      b.log,
			Routes:      b.routes,
			Version:     b.version,
			Slot:        b.args.Slot,
			OTA:         ota,
			OTAOff:      otaOff,
			ClockSynced: b.clockSynced,
			OnReady: func(dns []string, http string) {
				d := time.Since(bootTime())
				b.bootToServe.CompareAndSwap(0, int64(d))
				b.log.Info("node answering", "dns", dns, "management", http, "since_kernel_start", d.Round(time.Millisecond))
			},
		})
		if b.wd != nil {
			// The watchdog goes by the serving part of the node's
			// health only: a reset fixes a hung server, not a BGP
			// peer that is down or a zone past its expire.
			b.wd.setHealth(func() (bool, string) { return n.Health().Verdict(health.Serving) })
			defer b.wd.setHealth(nil)
		}
		return n.Run(ctx)
	})
}

// startHost runs host mode (tenants.enabled) under supervision in the
// node's place: the tenants' supervisor, the one BGP speaker and the
// management API, with the box's system endpoints added. The watchdog is
// fed while PID 1 runs (each tenant's health is its own routes' business,
// not a reason to reset the box), and over-the-air updates are off: they
// are the node's.
func (b *box) startHost(ctx context.Context) {
	b.log.Warn("host mode (tenants.enabled): the box runs tenants, not a node of its own; over-the-air updates off")
	b.nodeSup.start(ctx, "host", func(ctx context.Context) error {
		return host.Run(ctx, host.Options{
			Config: b.cfg,
			Logger: b.log,
			Routes: b.routes,
			OnReady: func(http string) {
				b.log.Info("host answering its management API", "management", http, "since_kernel_start", time.Since(bootTime()).Round(time.Millisecond))
			},
		})
	})
}

// trialGrace is the watchdog's boot grace on a trial boot: the soak's
// decision time (two soaks) and a minute to boot and load the store.
func trialGrace(soak time.Duration) time.Duration { return 2*soak + time.Minute }

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// IsInit reports whether this process is PID 1.
func IsInit() bool { return unix.Getpid() == 1 }
