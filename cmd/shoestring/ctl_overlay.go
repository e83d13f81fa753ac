package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/overlay"
)

// ctl reaches a node by its tailnet name: through the machine's own
// Tailscale (MagicDNS resolves "ams1", and -api ams1 means http://ams1/),
// or, on a machine without it, by joining the tailnet itself for the
// duration of the command as an ephemeral node (-authkey). In dev mode the
// node is on loopback and -api's default reaches it.

// tailnetFlags are ctl's flags for joining the tailnet itself.
type tailnetFlags struct {
	authKey, control *string
	verbose          *bool
}

func ctlTailnetFlags(fs *flag.FlagSet) *tailnetFlags {
	return &tailnetFlags{
		authKey: fs.String("authkey", "", "join the tailnet as an ephemeral node with this auth key (or @FILE) to reach -api by its tailnet name; not needed where Tailscale runs"),
		control: fs.String("control", "", "the tailnet's control server URL, with -authkey (default: Tailscale's)"),
		verbose: fs.Bool("v", false, "log the tailnet connection, with -authkey"),
	}
}

// client returns the API client for addr and a function to call when
// done (leaving the tailnet, when ctl joined it).
func (f *tailnetFlags) client(addr string) (*api.Client, func(), error) {
	c := api.NewClient(addr)
	if *f.authKey == "" {
		return c, func() {}, nil
	}
	key := *f.authKey
	if file, ok := strings.CutPrefix(key, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, nil, err
		}
		key = strings.TrimSpace(string(b))
	}
	level := slog.LevelWarn
	if *f.verbose {
		level = slog.LevelInfo
	}
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	t, err := overlay.New(overlay.Options{
		Hostname:   "ctl-" + host,
		ControlURL: *f.control,
		AuthKey:    key,
		Ephemeral:  true,
		Log:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go t.Run(ctx)
	if err := t.WaitUp(ctx); err != nil {
		t.Close()
		return nil, nil, err
	}
	c.HTTP = t.HTTPClient()
	c.HTTP.Timeout = 60 * time.Second
	return c, func() { t.Close() }, nil
}

// overlayCommands are the ctl commands for the overlay: who am I, the
// tailnet, the overview, metrics and the node's identity.
func overlayCommands() map[string]ctlCommand {
	return map[string]ctlCommand{
		"whoami": {help: "who the node sees you as, and your role", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			w, err := e.c.WhoAmI()
			if err != nil {
				return err
			}
			return e.print(w, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "you\t%s\nrole\t%s\n", w, orNone(string(w.Role)))
			})
		}},
		"tailnet": {help: "the node on the tailnet and its peers", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			t, err := e.c.Tailnet()
			if err != nil {
				return err
			}
			return e.print(t, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tADDRESSES\tSTATE\tTAGS")
				fmt.Fprintf(tw, "%s (this node)\t%s\t%s\t\n", t.Name, strings.Join(t.IPs, " "), t.State)
				for _, p := range t.Peers {
					state := "offline"
					if p.Online {
						state = "online"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, strings.Join(p.IPs, " "), state, strings.Join(p.Tags, " "))
				}
			})
		}},
		"overview": {help: "the status page in a terminal: sessions, prefixes, health, tailnet, dnstap, recent log", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			o, err := e.c.Overview()
			if err != nil {
				return err
			}
			return e.print(o, func(tw *tabwriter.Writer) { printOverview(tw, o) })
		}},
		"identity": {help: "the node's identity: name, location, version, zone serials", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			id, err := e.c.Identity()
			if err != nil {
				return err
			}
			return e.print(id, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "name\t%s\nlocation\t%s\nversion\t%s\n", id.Name, id.Location, id.Version)
				for _, z := range sortedKeys(id.Serials) {
					fmt.Fprintf(tw, "serial\t%s %d\n", z, id.Serials[z])
				}
			})
		}},
		"metrics": {args: "[PREFIX]", help: "the node's metrics (default: the shoestring_ ones), summed per series", nargs: -1, run: func(e *ctlEnv, a []string) error {
			prefix := "shoestring_"
			if len(a) > 0 {
				prefix = a[0]
			}
			raw, err := e.c.Metrics()
			if err != nil {
				return err
			}
			rows, err := metricRows(raw, prefix)
			if err != nil {
				return err
			}
			return e.print(rows, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "METRIC\tLABELS\tVALUE")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.Labels, r.Value)
				}
			})
		}},
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func printOverview(w io.Writer, o api.Overview) {
	if t := o.Tailnet; t != nil {
		fmt.Fprintf(w, "tailnet\t%s %s\t%s\n", t.Name, strings.Join(t.IPs, " "), t.State)
	} else {
		fmt.Fprintf(w, "tailnet\tnot joined (loopback management)\t\n")
	}
	if r := o.Routing; r != nil {
		for _, s := range r.Sessions {
			fmt.Fprintf(w, "bgp\t%s %s AS%d\t%s since %s, %d prefixes sent\n", s.Name, s.Address, s.RemoteASN, s.State, s.Since.Format(time.DateTime), s.PrefixesSent)
		}
		for _, p := range r.Prefixes {
			health := "failing"
			if p.Healthy {
				health = "passing"
			}
			fmt.Fprintf(w, "prefix\t%s\t%s, health check %s\n", p.Prefix, p.State, health)
		}
	} else {
		fmt.Fprintf(w, "bgp\tnot configured\t\n")
	}
	if s := o.Secondary; s != nil {
		for _, z := range s.Zones {
			fmt.Fprintf(w, "secondary\t%s serial %d\tlast success %s, expires %s\n", z.Origin, z.Serial, when(z.LastSuccess), when(z.ExpiresAt))
		}
	}
	if t := o.Dnstap; t != nil {
		fmt.Fprintf(w, "dnstap\t%s connected=%v\t%d sent, %d dropped\n", t.Target, t.Connected, t.Sent, t.Dropped)
	} else {
		fmt.Fprintf(w, "dnstap\toff\t\n")
	}
	logs := o.Logs
	if len(logs) > 10 {
		logs = logs[len(logs)-10:]
	}
	for _, l := range logs {
		fmt.Fprintf(w, "log\t%s %s\t%s\n", l.Time.Format(time.TimeOnly), l.Level, l.Message)
	}
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.DateTime)
}

// metricRow is one series of ctl metrics.
type metricRow struct {
	Name   string `json:"name"`
	Labels string `json:"labels,omitempty"`
	Value  string `json:"value"`
}

// metricRows parses Prometheus text and lists the series of the metrics
// whose names start with prefix; a histogram shows its count and mean.
func metricRows(raw []byte, prefix string) ([]metricRow, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	var rows []metricRow
	for _, name := range sortedKeys(fams) {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, m := range fams[name].GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			r := metricRow{Name: name, Labels: strings.Join(labels, ",")}
			switch {
			case m.Counter != nil:
				r.Value = fmt.Sprint(m.GetCounter().GetValue())
			case m.Gauge != nil:
				r.Value = fmt.Sprint(m.GetGauge().GetValue())
			case m.Histogram != nil:
				h := m.GetHistogram()
				mean := 0.0
				if h.GetSampleCount() > 0 {
					mean = h.GetSampleSum() / float64(h.GetSampleCount())
				}
				r.Value = fmt.Sprintf("count %d, mean %.3g", h.GetSampleCount(), mean)
			default:
				r.Value = "?"
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}
