package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/config"
)

const ctlUsage = `Usage: shoestring ctl [-api ADDR] [-json] COMMAND

Commands:
  status               node identity and counters
  health               exit 0 when the node is healthy
  zones                list zones
  zone ORIGIN          show one zone with its records
  put ORIGIN FILE      add or replace a zone from a master file (- for stdin)
  delete ORIGIN        remove a zone
`

// ctlMain is the management client.
func ctlMain(args []string) error {
	fs := flag.NewFlagSet("ctl", flag.ExitOnError)
	addr := fs.String("api", config.DefaultManagement, "management API address")
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	fs.Usage = func() { fmt.Fprint(os.Stderr, ctlUsage); fs.PrintDefaults() }
	fs.Parse(args)
	c := api.NewClient(*addr)
	a := fs.Args()
	if len(a) == 0 {
		fs.Usage()
		os.Exit(2)
	}
	need := func(n int) error {
		if len(a) != n+1 {
			return fmt.Errorf("ctl %s: want %d argument(s)\n%s", a[0], n, ctlUsage)
		}
		return nil
	}
	out := func(v any, table func(*tabwriter.Writer)) error {
		if *asJSON {
			e := json.NewEncoder(os.Stdout)
			e.SetIndent("", "  ")
			return e.Encode(v)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	}
	switch a[0] {
	case "status":
		s, err := c.Status()
		if err != nil {
			return err
		}
		return out(s, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "name\t%s\nlocation\t%s\nuptime\t%s\nready\t%v\nlisten\t%v\nzones\t%d\nqueries\t%d\n", s.Name, s.Location, s.Uptime, s.Ready, s.Listen, s.Zones, s.Queries)
			for _, p := range s.Problems {
				fmt.Fprintf(w, "problem\t%s\n", p)
			}
		})
	case "health":
		if err := c.Health(); err != nil {
			return err
		}
		fmt.Println("ok")
		return nil
	case "zones":
		zs, err := c.Zones()
		if err != nil {
			return err
		}
		return out(zs, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "ZONE\tSERIAL\tRECORDS\tUPDATED\tSOURCE\tSTATE")
			for _, z := range zs {
				fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\n", z.Origin, z.Serial, z.Records, z.Updated.Format(time.DateTime), z.Source, zoneState(z))
			}
		})
	case "zone":
		if err := need(1); err != nil {
			return err
		}
		z, err := c.Zone(a[1])
		if err != nil {
			return err
		}
		if *asJSON {
			return out(z, nil)
		}
		fmt.Printf("; %s serial %d, %d records, %s\n%s", z.Origin, z.Serial, z.Records, zoneState(z.ZoneInfo), z.Text)
		return nil
	case "put":
		if err := need(2); err != nil {
			return err
		}
		var text []byte
		var err error
		if a[2] == "-" {
			text, err = io.ReadAll(os.Stdin)
		} else {
			text, err = os.ReadFile(a[2])
		}
		if err != nil {
			return err
		}
		z, err := c.PutZone(a[1], text)
		if err != nil {
			return err
		}
		fmt.Printf("%s: serial %d, %d records, serving\n", z.Origin, z.Serial, z.Records)
		return nil
	case "delete":
		if err := need(1); err != nil {
			return err
		}
		if err := c.DeleteZone(a[1]); err != nil {
			return err
		}
		fmt.Println("deleted", a[1])
		return nil
	}
	return fmt.Errorf("ctl: unknown command %q\n%s", a[0], ctlUsage)
}

func zoneState(z api.ZoneInfo) string {
	switch {
	case z.Problem != "":
		return "problem: " + z.Problem
	case z.Serving:
		return "serving"
	}
	return "not served"
}
