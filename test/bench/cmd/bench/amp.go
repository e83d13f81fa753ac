package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shoestring-dns/shoestring/test/bench"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// The amplification benchmark (-amplification): every server serves the
// small zone of bench.WriteAmpZone, once with rate limiting off and once
// with the same limits on all three, and is flooded with each class of
// query from many addresses of one /24 (a fresh /24 per class, so one
// class's debt does not limit the next). It prints bytes and packets out
// versus in.

type ampOptions struct {
	on       bool
	rate     int
	duration time.Duration
	sources  int
	limit    int
}

func ampFlags(fs *flag.FlagSet) *ampOptions {
	a := &ampOptions{}
	fs.BoolVar(&a.on, "amplification", false, "run only the amplification benchmark (bytes out vs in under a spoofed-looking flood, RRL off and on)")
	fs.IntVar(&a.rate, "amp-rate", 500, "amplification: queries per second per flood")
	fs.DurationVar(&a.duration, "amp-duration", 5*time.Second, "amplification: length of each flood")
	fs.IntVar(&a.sources, "amp-sources", 250, "amplification: source addresses in the flood's /24")
	fs.IntVar(&a.limit, "amp-rrl", 5, "amplification: RRL responses per second (all three servers)")
	return a
}

// amplification runs the benchmark, prints its table, and reports whether
// every flood ran.
func (o *options) amplification(ctx context.Context, a *ampOptions) bool {
	zoneFile := filepath.Join(o.root, "amp.zone")
	f, err := os.Create(zoneFile)
	if err != nil {
		logf("%v", err)
		return false
	}
	err = bench.WriteAmpZone(f, bench.Origin)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		logf("writing the amplification zone: %v", err)
		return false
	}
	limits := &refserver.RRL{ResponsesPerSecond: a.limit, Slip: 2}
	ok := true
	var rs []bench.AmpResult
	for _, name := range o.serverNames {
		if name == "shoestring-rrl" {
			continue // the same server: here every server runs with RRL off and on
		}
		for _, rrl := range []bool{false, true} {
			var l *refserver.RRL
			if rrl {
				l = limits
			}
			res, err := o.ampServer(ctx, a, name, l, zoneFile)
			if ctx.Err() != nil {
				return true
			}
			if err != nil {
				ok = false
				logf("%s, RRL %v: FAILED: %v", name, rrl, firstLine(err))
				for _, c := range bench.AmpClasses() {
					rs = append(rs, bench.AmpResult{Server: name, Class: c, RRL: rrl, Err: err})
				}
				continue
			}
			rs = append(rs, res...)
		}
	}
	fmt.Printf("\nAmplification: %d qps for %s per flood from %d addresses of one /24, EDNS buffer 1232, no cookies; RRL on = %d responses/s, slip 2 (Shoestring also window 15 s; NSD and Knot have no window setting), IPv4 /24\n\n",
		a.rate, a.duration, a.sources, a.limit)
	bench.PrintAmp(os.Stdout, rs, "shoestring", "nsd")
	return ok
}

// ampServer starts one server on the amplification zone with RRL l (nil:
// off) and floods it with every class.
func (o *options) ampServer(ctx context.Context, a *ampOptions, name string, l *refserver.RRL, zoneFile string) ([]bench.AmpResult, error) {
	var srv bench.Server
	switch name {
	case "shoestring":
		srv = bench.Shoestring{Bin: o.bin, RRL: l}
	case "nsd":
		p, err := bench.LookTool("nsd")
		if err != nil {
			return nil, err
		}
		srv = bench.NSD{Bin: p, RRL: l}
	case "knot":
		p, err := bench.LookTool("knotd")
		if err != nil {
			return nil, err
		}
		srv = bench.Knot{Bin: p, RRL: l}
	default:
		return nil, fmt.Errorf("unknown server %q", name)
	}
	suffix := "off"
	if l != nil {
		suffix = "on"
	}
	dir := filepath.Join(o.root, "amp-"+name+"-rrl-"+suffix)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := refserver.FreePort()
	if err != nil {
		return nil, err
	}
	argv, env, err := srv.Command(dir, zoneFile, port)
	if err != nil {
		return nil, err
	}
	proc, err := bench.Start(name, o.pin(o.serverCPU), argv, env, filepath.Join(dir, "output.log"))
	if err != nil {
		return nil, err
	}
	defer proc.Stop(o.stopGrace)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if _, err := bench.WaitReady(ctx, proc, addr, bench.AmpReadyProbe(bench.Origin), 20*time.Second); err != nil {
		return nil, err
	}
	if err := bench.AmpCheck(addr, net.IPv4(127, 0, 9, 1), bench.Origin); err != nil {
		return nil, fmt.Errorf("wrong answer, not flooding it: %w", err)
	}
	var rs []bench.AmpResult
	for i, c := range bench.AmpClasses() {
		fl := bench.Flood{Addr: addr, Origin: bench.Origin, Net: 0, Host: byte(10 + i), Sources: a.sources,
			Rate: a.rate, Duration: a.duration, Drain: time.Second, Seed: o.seed}
		cnt, err := fl.Run(ctx, c)
		r := bench.AmpResult{Server: name, Class: c, RRL: l != nil, AmpCount: cnt, Err: err}
		rs = append(rs, r)
		if err != nil {
			return nil, fmt.Errorf("%s flood: %w", c, err)
		}
		logf("%s, RRL %s, %s: %d queries, %d responses (%d TC), %d bytes in, %d out: %.2fx",
			name, suffix, c, cnt.Queries, cnt.Responses, cnt.TC, cnt.BytesIn, cnt.BytesOut, cnt.Ratio())
	}
	return rs, nil
}
