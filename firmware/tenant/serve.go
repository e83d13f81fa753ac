package tenant

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/firmware/logring"
	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/zones"
)

// Serve is `shoestring tenant-serve`, the tenant's name server, inside
// its root as its own uid: it forbids itself new listening sockets,
// reports the protections it finds itself under, and answers from its own
// store on the sockets the host passed, until SIGTERM. It has no routing,
// no network configuration and no management listener: the host does
// those. Its own endpoints (metrics, secondary zones, log) are served by
// control on the control socket the host passed. In a network namespace
// of its own it connects to its primaries and its dnstap collector
// through the host (broker.go).
func Serve(control ControlServer) error {
	spec, err := readSpec()
	if err != nil {
		return err
	}
	logs := logring.New(recentLogLines)
	log := slog.New(logs.Handler(slog.NewTextHandler(os.Stderr, nil))).With("tenant", spec.Name)
	seccompErr := installSeccomp()
	landlock, _ := restrictFiles()
	report := os.NewFile(fdReport, "report")
	json.NewEncoder(report).Encode(selfCheck(seccompErr, landlock, spec.NetworkNamespace))
	report.Close()

	cfg := &config.Config{DataDir: dataInRoot}
	if spec.DNS != nil {
		// The tenant's own cookie secrets, RRL and per-client limits.
		cfg.DNS.DNSAbuse = *spec.DNS
	}
	cfg.SetDefaults()
	cfg.Node.Name, cfg.DNS.NSID = spec.Name, spec.NSID
	for _, o := range spec.Zones {
		cfg.Zones = append(cfg.Zones, config.Zone{Origin: o, File: filepath.Join(dataInRoot, zoneFile(o))})
	}
	st, err := store.Open(filepath.Join(dataInRoot, "shoestring.db"), store.Options{})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer st.Close()
	zs := zones.New(zones.Options{Store: st, Log: log})
	dc := dnsserver.FromConfig(cfg)
	dc.Listen, dc.Logger = nil, log
	udp := 0
	for _, k := range spec.Sockets {
		if k.UDP {
			udp++
		}
	}
	dc.UDPWorkers = max(udp, 1)
	var dial *brokerDialer // nil: it connects out itself
	if spec.Broker {
		if dial, err = newBrokerDialer(os.NewFile(spec.fdBroker(), "dial broker")); err != nil {
			return err
		}
	}
	sec, err := newSecondary(spec, zs, st, dial, log)
	if err != nil {
		return err
	}
	if sec != nil {
		dc.Transfers = sec
	}
	srv := dnsserver.New(dc)
	if err := zs.Load(srv); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Close()
	tap := startTap(ctx, spec, srv, dial, log)
	for i, k := range spec.Sockets {
		if err := serveSocket(srv, os.NewFile(uintptr(fdSockets+i), k.Addr), k.UDP); err != nil {
			return fmt.Errorf("socket %s: %w", k.Addr, err)
		}
	}
	zs.ImportConfigured(cfg.Zones)
	zones.ReleaseMemory()
	if sec != nil {
		if err := sec.Start(ctx); err != nil {
			return fmt.Errorf("secondary: %w", err)
		}
	}
	if spec.Control && control != nil {
		f := os.NewFile(spec.fdControl(), "control")
		ln, err := net.FileListener(f)
		f.Close()
		if err == nil {
			err = control(ctx, ln, ControlSources{Name: spec.Name, DNS: srv, Zones: zs, Secondary: sec, Tap: tap, Logs: logs, Log: log})
		}
		if err != nil {
			return fmt.Errorf("control socket: %w", err)
		}
	}
	log.Info("answering", "zones", srv.Zones(), "listen", srv.Addrs())
	<-ctx.Done()
	log.Info("stopping")
	return nil
}

func serveSocket(srv *dnsserver.Server, f *os.File, udp bool) error {
	defer f.Close() // the server holds its own descriptor
	if udp {
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return err
		}
		uc, ok := pc.(*net.UDPConn)
		if !ok {
			return fmt.Errorf("not a UDP socket")
		}
		return srv.ServeUDP(uc)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		return err
	}
	return srv.ServeListener(ln)
}
