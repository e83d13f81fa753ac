package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/test/bench"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// The transfer benchmark: a zone of -xfr-records records (a million by
// default) served by Knot, and a fresh Shoestring node that is its
// secondary. It times node start → first correct answer for the last
// host (the AXFR, the store's validation and write, the snapshot build),
// and reads the node's peak RSS (VmHWM): what a 512 MB box needs to take
// such a zone. The issue asks for the figure here, not as a test
// threshold, since it depends on the machine.

type xfrOptions struct {
	records int
	only    bool
}

func xfrFlags(fs *flag.FlagSet) *xfrOptions {
	x := &xfrOptions{}
	fs.IntVar(&x.records, "xfr-records", 1_000_000, "records in the zone for the AXFR benchmark (Knot primary → Shoestring secondary); 0 skips it")
	fs.BoolVar(&x.only, "xfr-only", false, "run only the AXFR benchmark, not dnsperf")
	return x
}

// xfrResult is one AXFR benchmark run.
type xfrResult struct {
	Records   int
	Took      time.Duration // node start → first correct answer
	Transfer  string        // the node's own figure for the AXFR on the wire
	HWM, RSS  uint64        // KiB, after the zone is served
	KnotStart time.Duration
}

// runXfr runs the AXFR benchmark and prints its line; it returns false on
// failure (the reason is printed).
func (o *options) runXfr(ctx context.Context, x *xfrOptions) bool {
	if x.records <= 0 {
		return true
	}
	r, err := o.xfr(ctx, x.records)
	if err != nil {
		if ctx.Err() == nil {
			logf("AXFR benchmark FAILED: %v", err)
		}
		return false
	}
	o.xfrRes = &r
	fmt.Printf("\nAXFR of %d records from Knot into a fresh Shoestring node (node on core %d, Knot on core %d):\n", r.Records, o.serverCPU, o.clientCPU)
	fmt.Printf("  first answer for the last host %.1f s after the node started (AXFR on the wire: %s)\n", r.Took.Seconds(), r.Transfer)
	fmt.Printf("  node peak RSS (VmHWM) %.0f MiB; RSS once served %.0f MiB\n", float64(r.HWM)/1024, float64(r.RSS)/1024)
	return true
}

func (o *options) xfr(ctx context.Context, records int) (xfrResult, error) {
	res := xfrResult{}
	dir := filepath.Join(o.root, "xfr")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	// bench.WriteZone writes 7 fixed records and an A and an AAAA per host.
	zc := bench.DefaultZone()
	zc.Hosts = max(1, (records-7)/2)
	zoneFile := filepath.Join(dir, "xfr.zone")
	f, err := os.Create(zoneFile)
	if err != nil {
		return res, err
	}
	st, err := bench.WriteZone(f, zc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, err
	}
	res.Records = st.Records
	logf("AXFR benchmark: zone of %d records; starting Knot as the primary", st.Records)

	kport, err := refserver.FreePort()
	if err != nil {
		return res, err
	}
	kdir := filepath.Join(dir, "knot")
	kargv, err := refserver.KnotConfig{Port: kport, Zones: []refserver.Zone{{Origin: zc.Origin, File: zoneFile}}}.Write(kdir)
	if err != nil {
		return res, err
	}
	knot, err := bench.Start("knot-primary", o.pin(o.clientCPU), kargv, nil, filepath.Join(kdir, "knot.log"))
	if err != nil {
		return res, err
	}
	defer knot.Stop(o.stopGrace)
	kaddr := "127.0.0.1:" + strconv.Itoa(kport)
	if res.KnotStart, err = bench.WaitReady(ctx, knot, kaddr, bench.ReadyProbe(zc), o.startTimeout); err != nil {
		return res, err
	}
	logf("AXFR benchmark: Knot serves the zone after %.1f s; starting the node", res.KnotStart.Seconds())

	port, err := refserver.FreePort()
	if err != nil {
		return res, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	argv := []string{o.bin, "dev", "-data", filepath.Join(dir, "node"), "-listen", addr, "-http", "127.0.0.1:0",
		"-secondary", zc.Origin + "=" + kaddr}
	logPath := filepath.Join(dir, "node.log")
	node, err := bench.Start("shoestring-secondary", o.pin(o.serverCPU), argv, []string{"GOMAXPROCS=1"}, logPath)
	if err != nil {
		return res, err
	}
	defer node.Stop(o.stopGrace)
	if res.Took, err = bench.WaitReady(ctx, node, addr, bench.ReadyProbe(zc), o.startTimeout); err != nil {
		return res, err
	}
	// The node hands memory back right after the swap; give it a moment
	// so "RSS once served" is the steady figure, not the moment of swap.
	time.Sleep(2 * time.Second)
	m, err := bench.SampleMemory(node.Pid())
	if err != nil {
		return res, err
	}
	res.HWM, res.RSS = m.HWM, m.RSS
	res.Transfer = transferFigure(logPath)
	return res, nil
}

// transferFigure finds the node's log line for the AXFR and returns its
// timing and size.
func transferFigure(logPath string) string {
	f, err := os.Open(logPath)
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for sc.Scan() {
		l := sc.Text()
		if !strings.Contains(l, "zone updated") || !strings.Contains(l, "type=AXFR") {
			continue
		}
		var took, msgs, bytes string
		for _, field := range strings.Fields(l) {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "took":
				took = v
			case "messages":
				msgs = v
			case "bytes":
				bytes = v
			}
		}
		return fmt.Sprintf("%s, %s messages, %s bytes", took, msgs, bytes)
	}
	return "?"
}
