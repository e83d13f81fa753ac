package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
)

// ctlCommand is one `shoestring ctl` command. Commands live in a file per
// subsystem (ctl_zones.go, ctl_secondary.go, ctl_routing.go,
// ctl_system.go, ctl_overlay.go, ctl_update.go, ctl_config.go,
// ctl_tenants.go) and are
// gathered by ctlCommands.
type ctlCommand struct {
	args  string // argument synopsis, for the usage text
	help  string
	nargs int // exact number of arguments, or -1 for any
	run   func(e *ctlEnv, args []string) error
}

// ctlEnv is what a command gets: the API client and the output format.
type ctlEnv struct {
	c    *api.Client
	json bool
	out  io.Writer // os.Stdout unless a test says otherwise
	// every is how often a long command (update) polls its progress.
	every time.Duration
}

func (e *ctlEnv) stdout() io.Writer {
	if e.out == nil {
		return os.Stdout
	}
	return e.out
}

// print writes v as JSON with -json, or as the table the command draws.
func (e *ctlEnv) print(v any, table func(w *tabwriter.Writer)) error {
	if e.json || table == nil {
		enc := json.NewEncoder(e.stdout())
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(e.stdout(), 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func ctlCommands() map[string]ctlCommand {
	all := map[string]ctlCommand{}
	for _, group := range []map[string]ctlCommand{zoneCommands(), secondaryCommands(), routingCommands(), systemCommands(), overlayCommands(), updateCommands(), configCommands(), tenantCommands()} {
		for name, c := range group {
			all[name] = c
		}
	}
	return all
}

func ctlUsage(cmds map[string]ctlCommand) string {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Usage: shoestring ctl [-api ADDR] [-json] COMMAND\n\nCommands:\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s %s\t%s\n", n, cmds[n].args, cmds[n].help)
	}
	tw.Flush()
	return b.String()
}

// ctlMain is the management client.
func ctlMain(args []string) error {
	cmds := ctlCommands()
	fs := flag.NewFlagSet("ctl", flag.ExitOnError)
	addr := fs.String("api", config.DefaultManagement, "management API: host:port, URL, or a node's tailnet name")
	tailnet := ctlTailnetFlags(fs) // ctl_overlay.go: reaching a node over the tailnet
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	fs.Usage = func() { fmt.Fprint(os.Stderr, ctlUsage(cmds)); fs.PrintDefaults() }
	fs.Parse(args)
	a := fs.Args()
	if len(a) == 0 {
		fs.Usage()
		os.Exit(2)
	}
	cmd, ok := cmds[a[0]]
	if !ok {
		return fmt.Errorf("ctl: unknown command %q\n%s", a[0], ctlUsage(cmds))
	}
	if cmd.nargs >= 0 && len(a)-1 != cmd.nargs {
		return fmt.Errorf("usage: shoestring ctl %s %s", a[0], cmd.args)
	}
	c, done, err := tailnet.client(*addr)
	if err != nil {
		return err
	}
	defer done()
	return cmd.run(&ctlEnv{c: c, json: *asJSON}, a[1:])
}
