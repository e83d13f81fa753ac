package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/catchment"
	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
	"github.com/shoestring-dns/shoestring/cmd/fleet/serial"
	"github.com/shoestring-dns/shoestring/cmd/fleet/web"
)

// cli calls a running controller.
type cli struct {
	base string
	http *http.Client
}

func newCLI(base string) *cli {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &cli{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 2 * time.Minute}}
}

func (c *cli) call(method, path string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("controller at %s: %w (is `shoestring-fleet serve` running?)", c.base, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		var e web.Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

func (c *cli) postJSON(path string, in, out any) error {
	b, _ := json.Marshal(in)
	return c.call("POST", path, bytes.NewReader(b), out)
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table() *tabwriter.Writer { return tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0) }

// jsonFlag takes -json (anywhere) out of a subcommand's arguments.
func jsonFlag(args []string) (bool, []string) {
	j, rest := false, []string{}
	for _, a := range args {
		if a == "-json" || a == "--json" {
			j = true
			continue
		}
		rest = append(rest, a)
	}
	return j, rest
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func cliMain(c *cli, args []string) error {
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "status":
		j, _ := jsonFlag(rest)
		var ov web.Overview
		if err := c.call("GET", "/api/overview", nil, &ov); err != nil {
			return err
		}
		if j {
			return printJSON(ov)
		}
		fmt.Printf("fleet: %s\n", strings.ToUpper(ov.Colour))
		if c := ov.Controller; c.Role != "" && c.Role != "single" {
			leader := c.Leader
			if leader == "" {
				leader = "none (election under way)"
			}
			fmt.Printf("controller: %s (%s); leader: %s; store %s\n", c.Name, c.Role, leader, c.Store)
		}
		for _, e := range ov.Exceptions {
			fmt.Println("  !", e)
		}
		return nil
	case "nodes":
		j, _ := jsonFlag(rest)
		var nodes []web.NodeView
		if err := c.call("GET", "/api/nodes", nil, &nodes); err != nil {
			return err
		}
		if j {
			return printJSON(nodes)
		}
		w := table()
		fmt.Fprintln(w, "NODE\tCOLOUR\tSITE\tREGION\tWAVE\tGROUP\tVERSION\tCONFIG\tDRIFT\tZONES\tLAG\tQPS\tLAST CONTACT")
		for _, n := range nodes {
			cfg := "-"
			if n.Live.Config != nil {
				cfg = fmt.Sprintf("%d/%.8s", n.Live.Config.Generation, n.Live.Config.Hash)
			}
			last := "never"
			if !n.Live.LastContact.IsZero() {
				last = time.Since(n.Live.LastContact).Round(time.Second).String()
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%.1f\t%s\n", n.Name, n.Colour, n.Site, n.Region, n.Wave, n.Group, n.Live.Version, cfg, n.Drift, len(n.Live.Zones), n.MaxLag, n.Live.QPS, last)
		}
		return w.Flush()
	case "node":
		return nodeCmd(c, rest)
	case "inventory":
		if len(rest) != 2 || rest[0] != "load" {
			return errors.New("usage: inventory load FILE.yaml")
		}
		b, err := os.ReadFile(rest[1])
		if err != nil {
			return err
		}
		var out map[string]int
		if err := c.call("POST", "/api/inventory", bytes.NewReader(b), &out); err != nil {
			return fmt.Errorf("%s: %w", rest[1], err)
		}
		fmt.Printf("%d nodes loaded\n", out["nodes"])
		return nil
	case "group":
		fs := flag.NewFlagSet("group set", flag.ExitOnError)
		force := fs.Bool("force", false, "replace an existing template (no rollout, no gates: nodes show drift until corrected)")
		if len(rest) < 3 || rest[0] != "set" {
			return errors.New("usage: group set NAME TEMPLATE [-force]")
		}
		fs.Parse(rest[3:])
		b, err := os.ReadFile(rest[2])
		if err != nil {
			return err
		}
		q := ""
		if *force {
			q = "?force=1"
		}
		var g map[string]any
		if err := c.call("PUT", "/api/groups/"+url.PathEscape(rest[1])+q, bytes.NewReader(b), &g); err != nil {
			return err
		}
		fmt.Printf("group %s: release %v\n", rest[1], g["release"])
		return nil
	case "groups":
		var gs []map[string]any
		if err := c.call("GET", "/api/groups", nil, &gs); err != nil {
			return err
		}
		return printJSON(gs)
	case "drift":
		j, _ := jsonFlag(rest)
		var nodes []web.NodeView
		if err := c.call("GET", "/api/nodes", nil, &nodes); err != nil {
			return err
		}
		var drift []web.NodeView
		for _, n := range nodes {
			if n.Drift == "drift" || n.Drift == "unknown" {
				drift = append(drift, n)
			}
		}
		if j {
			return printJSON(drift)
		}
		w := table()
		fmt.Fprintln(w, "NODE\tGROUP\tSTATE\tRUNNING\tWANT")
		for _, n := range drift {
			run := ""
			if n.Live.Config != nil {
				run = n.Live.Config.Hash
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%.12s\t%.12s\n", n.Name, n.Group, n.Drift, run, n.Want)
		}
		return w.Flush()
	case "correct":
		if len(rest) != 1 {
			return errors.New("usage: correct NODE")
		}
		var out map[string]any
		if err := c.call("POST", "/api/nodes/"+url.PathEscape(rest[0])+"/correct", nil, &out); err != nil {
			return err
		}
		return printJSON(out)
	case "serials":
		j, _ := jsonFlag(rest)
		var rep serial.Report
		if err := c.call("GET", "/api/serials", nil, &rep); err != nil {
			return err
		}
		if j {
			return printJSON(rep)
		}
		w := table()
		fmt.Fprintln(w, "ZONE\tNODE\tSERIAL\tPRIMARY\tREFERENCE\tLAG\tSTATE")
		for _, r := range rep.Rows {
			ref, state := "?", "current"
			if r.Reference != nil {
				ref = strconv.FormatUint(uint64(*r.Reference), 10)
			} else {
				state = "unknown: " + r.Error
			}
			if r.Stale {
				state = "STALE"
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%d\t%s\n", r.Zone, r.Node, r.Serial, r.Primary, ref, r.Lag, state)
		}
		return w.Flush()
	case "rollout":
		return rolloutCmd(c, rest)
	case "rollouts":
		j, _ := jsonFlag(rest)
		var ros []*rollout.Rollout
		if err := c.call("GET", "/api/rollouts", nil, &ros); err != nil {
			return err
		}
		if j {
			return printJSON(ros)
		}
		w := table()
		fmt.Fprintln(w, "ID\tGROUP\tRELEASE\tSTATE\tWAVE\tHALT")
		for _, ro := range ros {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d\t%s\n", ro.ID, ro.Group, ro.Release, ro.State, min(ro.Wave+1, len(ro.Waves)), len(ro.Waves), ro.Halt)
		}
		return w.Flush()
	case "quarantine":
		if len(rest) == 2 && rest[0] == "clear" {
			return c.call("DELETE", "/api/quarantine/"+url.PathEscape(rest[1]), nil, nil)
		}
		var qs []rollout.Quarantine
		if err := c.call("GET", "/api/quarantine", nil, &qs); err != nil {
			return err
		}
		return printJSON(qs)
	case "catchment":
		return catchmentCmd(c, rest)
	case "sd":
		var sd []web.Target
		if err := c.call("GET", "/sd", nil, &sd); err != nil {
			return err
		}
		return printJSON(sd)
	}
	return fmt.Errorf("unknown command %q (shoestring-fleet with no arguments lists them)", cmd)
}

func nodeCmd(c *cli, args []string) error {
	if len(args) == 2 && args[0] == "rm" {
		return c.call("DELETE", "/api/nodes/"+url.PathEscape(args[1]), nil, nil)
	}
	if len(args) == 0 || args[0] != "add" {
		return errors.New("usage: node add -name N -api HOST:PORT [...] | node rm NAME")
	}
	fs := flag.NewFlagSet("node add", flag.ExitOnError)
	var n inventory.Node
	fs.StringVar(&n.Name, "name", "", "node name (its NSID)")
	fs.StringVar(&n.API, "api", "", "management API host:port (tailnet name, or loopback in dev mode)")
	fs.StringVar(&n.DNS, "dns", "", "a service address host:port for canary queries (default: the API host, port 53)")
	fs.StringVar(&n.Site, "site", "", "site")
	fs.StringVar(&n.Region, "region", "", "region (one canary per region; the invariant counts per region)")
	fs.StringVar(&n.Country, "country", "", "country")
	fs.StringVar(&n.City, "city", "", "city")
	fs.Float64Var(&n.Lat, "lat", 0, "latitude")
	fs.Float64Var(&n.Lon, "lon", 0, "longitude")
	fs.StringVar(&n.Provider, "provider", "", "provider")
	fs.StringVar(&n.Wave, "wave", "", "wave label (rollouts go in label order after the canaries)")
	fs.StringVar(&n.Group, "group", "", "config group (its template renders the node's config)")
	var prefixes, vars, ups listFlag
	fs.Var(&prefixes, "prefix", "a prefix the node announces (repeatable)")
	fs.Var(&vars, "var", "KEY=VALUE for the group template (repeatable)")
	fs.Var(&ups, "upstream", "ASN[:COMMUNITY,COMMUNITY...] a BGP upstream (repeatable)")
	fs.Parse(args[1:])
	n.Prefixes = prefixes
	for _, v := range vars {
		k, val, ok := strings.Cut(v, "=")
		if !ok {
			return fmt.Errorf("-var %q: want KEY=VALUE", v)
		}
		if n.Vars == nil {
			n.Vars = map[string]string{}
		}
		n.Vars[k] = val
	}
	for _, u := range ups {
		asn, comms, _ := strings.Cut(u, ":")
		a, err := strconv.ParseUint(asn, 10, 32)
		if err != nil {
			return fmt.Errorf("-upstream %q: ASN: %v", u, err)
		}
		up := inventory.Upstream{ASN: uint32(a)}
		if comms != "" {
			up.Communities = strings.Split(comms, ",")
		}
		n.Upstreams = append(n.Upstreams, up)
	}
	if err := n.Check(); err != nil {
		return err
	}
	return c.postJSON("/api/nodes", n, nil)
}

func rolloutCmd(c *cli, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: rollout start|show|keep|revert|resume ...")
	}
	switch args[0] {
	case "start":
		fs := flag.NewFlagSet("rollout start", flag.ExitOnError)
		group := fs.String("group", "", "the group whose template changes")
		tmpl := fs.String("template", "", "the new template file (a config rollout)")
		bundleFile := fs.String("bundle", "", "a firmware bundle file (a firmware rollout: uploaded to the controller, which installs it on each node through its update API)")
		var canaries listFlag
		fs.Var(&canaries, "canary", "NAME[/TYPE]: a query every node must answer itself after the change (repeatable)")
		fs.Parse(args[1:])
		req := web.StartRequest{Group: *group}
		switch {
		case (*tmpl == "") == (*bundleFile == ""):
			return errors.New("rollout start: give one of -template FILE and -bundle FILE")
		case *bundleFile != "":
			f, err := os.Open(*bundleFile)
			if err != nil {
				return err
			}
			var info rollout.BundleInfo
			err = c.call("POST", "/api/bundles", f, &info)
			f.Close()
			if err != nil {
				return err
			}
			fmt.Printf("bundle %s: %s for %s, %d bytes\n", info.ID[:12], info.Version, info.Board, info.Size)
			req.Kind, req.Bundle = rollout.KindFirmware, info.ID
		default:
			b, err := os.ReadFile(*tmpl)
			if err != nil {
				return err
			}
			req.Template = string(b)
		}
		for _, q := range canaries {
			cq, err := rollout.ParseQuery(q)
			if err != nil {
				return err
			}
			req.Canaries = append(req.Canaries, cq)
		}
		var ro rollout.Rollout
		if err := c.postJSON("/api/rollouts", req, &ro); err != nil {
			return err
		}
		printRollout(&ro)
		return nil
	case "show":
		j, rest := jsonFlag(args[1:])
		if len(rest) != 1 {
			return errors.New("usage: rollout show ID")
		}
		var ro rollout.Rollout
		if err := c.call("GET", "/api/rollouts/"+url.PathEscape(rest[0]), nil, &ro); err != nil {
			return err
		}
		if j {
			return printJSON(ro)
		}
		printRollout(&ro)
		return nil
	case "keep", "revert", "resume":
		if len(args) != 2 {
			return fmt.Errorf("usage: rollout %s ID", args[0])
		}
		var ro rollout.Rollout
		if err := c.call("POST", "/api/rollouts/"+url.PathEscape(args[1])+"/"+args[0], nil, &ro); err != nil {
			return err
		}
		printRollout(&ro)
		return nil
	}
	return fmt.Errorf("rollout %s: unknown (start, show, keep, revert, resume)", args[0])
}

func printRollout(ro *rollout.Rollout) {
	fmt.Printf("rollout %s: group %s, release %s: %s\n", ro.ID, ro.Group, ro.Release, ro.State)
	if ro.Halt != "" {
		fmt.Printf("  halted: %s\n", ro.Halt)
	}
	w := table()
	fmt.Fprintln(w, "WAVE\tNODE\tSTATE\tGATES")
	for i, wv := range ro.Waves {
		for _, name := range wv.Nodes {
			for _, n := range ro.Nodes {
				if n.Name != name {
					continue
				}
				var gs []string
				for _, g := range n.Gates {
					gs = append(gs, g.Gate+"="+g.Outcome)
				}
				st := n.State
				if n.Waiting != "" {
					st += " (" + n.Waiting + ")"
				}
				if n.Error != "" {
					st += ": " + n.Error
				}
				fmt.Fprintf(w, "%d %s\t%s\t%s\t%s\n", i, wv.Name, n.Name, st, strings.Join(gs, " "))
			}
		}
	}
	w.Flush()
}

func catchmentCmd(c *cli, args []string) error {
	j, args := jsonFlag(args)
	if len(args) == 0 {
		return errors.New("usage: catchment run|show|list|diff ...")
	}
	switch args[0] {
	case "run":
		fs := flag.NewFlagSet("catchment run", flag.ExitOnError)
		file := fs.String("targets", "", "file of target addresses, one a line ('#' comments)")
		var targets, senders listFlag
		fs.Var(&targets, "target", "a target address (repeatable)")
		fs.Var(&senders, "sender", "a node that sends probes (repeatable; all: every node; default: one)")
		rate := fs.Int("rate", 0, "probes per second per sender (default: each node's catchment.rate)")
		linger := fs.Duration("linger", 2*time.Second, "how long replies are awaited after the last probe")
		label := fs.String("label", "", "a note kept with the measurement")
		dnsProbe := fs.Bool("dns", false, "also send each target a DNS query (port 53) from the anycast address")
		fs.Parse(args[1:])
		req := catchment.Request{Targets: targets, Senders: senders, Rate: *rate, Linger: linger.String(), Label: *label, DNS: *dnsProbe}
		if *file != "" {
			ts, err := catchment.ReadTargets(*file)
			if err != nil {
				return err
			}
			req.Targets = append(req.Targets, ts...)
		}
		if len(req.Targets) == 0 {
			return errors.New("catchment run: no targets (-targets FILE or -target ADDR)")
		}
		var m catchment.Measurement
		if err := c.postJSON("/api/catchment", req, &m); err != nil {
			return err
		}
		for m.State == catchment.Running {
			time.Sleep(300 * time.Millisecond)
			if err := c.call("GET", "/api/catchment/"+url.PathEscape(m.ID), nil, &m); err != nil {
				return err
			}
		}
		if j {
			return printJSON(m)
		}
		printCatchment(&m)
		if m.State == catchment.Failed {
			return errors.New("measurement failed: " + m.Error)
		}
		return nil
	case "show":
		id := "latest"
		if len(args) == 2 {
			id = args[1]
		} else if len(args) > 2 {
			return errors.New("usage: catchment show [ID]")
		}
		var m catchment.Measurement
		if err := c.call("GET", "/api/catchment/"+url.PathEscape(id), nil, &m); err != nil {
			return err
		}
		if j {
			return printJSON(m)
		}
		printCatchment(&m)
		return nil
	case "list":
		var ms []catchment.Measurement
		if err := c.call("GET", "/api/catchment", nil, &ms); err != nil {
			return err
		}
		if j {
			return printJSON(ms)
		}
		w := table()
		fmt.Fprintln(w, "ID\tSTATE\tTARGETS\tANSWERED\tSENDERS\tTOOK\tLABEL")
		for _, m := range ms {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", m.ID, m.State, len(m.Targets), m.Answered, strings.Join(m.Senders, ","), m.Took, m.Label)
		}
		return w.Flush()
	case "diff":
		q := ""
		switch len(args) {
		case 1:
		case 3:
			q = "?from=" + url.QueryEscape(args[1]) + "&to=" + url.QueryEscape(args[2])
		default:
			return errors.New("usage: catchment diff [FROM TO] (default: the two newest)")
		}
		var d catchment.DiffReport
		if err := c.call("GET", "/api/catchment/diff"+q, nil, &d); err != nil {
			return err
		}
		if j {
			return printJSON(d)
		}
		fmt.Printf("catchment %s → %s: %d prefixes unchanged, %d changed\n", d.From, d.To, d.Same, len(d.Changed))
		w := table()
		fmt.Fprintln(w, "PREFIX\tFROM\tTO")
		for _, ch := range d.Changed {
			fmt.Fprintf(w, "%s\t%s\t%s\n", ch.Prefix, orDash(ch.From), orDash(ch.To))
		}
		return w.Flush()
	}
	return fmt.Errorf("catchment %s: unknown (run, show, list, diff)", args[0])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printCatchment(m *catchment.Measurement) {
	fmt.Printf("catchment %s: %s", m.ID, m.State)
	if m.Label != "" {
		fmt.Printf(" (%s)", m.Label)
	}
	fmt.Printf(", %d of %d targets answered, %d probes sent by %s, took %s\n", m.Answered, len(m.Targets), m.Sent, strings.Join(m.Senders, ","), m.Took)
	if len(m.Probes) > 0 {
		fmt.Printf("replies by probe: icmp %d, dns %d\n", m.Probes["icmp"], m.Probes["dns"])
	}
	if m.Error != "" {
		fmt.Println("  error:", m.Error)
	}
	for n, e := range m.NodeErrors {
		fmt.Printf("  ! %s: %s\n", n, e)
	}
	w := table()
	fmt.Fprintln(w, "PREFIX\tNODE\tSITE\tTARGETS\tSPLIT")
	for _, r := range m.Map {
		split := ""
		for n, c := range r.Split {
			split += fmt.Sprintf("%s:%d ", n, c)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", r.Prefix, r.Node, r.Site, r.Targets, split)
	}
	w.Flush()
	if len(m.Unanswered) > 0 {
		fmt.Printf("unanswered (first %d): %s\n", len(m.Unanswered), strings.Join(m.Unanswered, " "))
	}
}
