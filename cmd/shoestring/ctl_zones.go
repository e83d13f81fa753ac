package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

func zoneCommands() map[string]ctlCommand {
	return map[string]ctlCommand{
		"status": {help: "node identity, counters and memory", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			s, err := e.c.Status()
			if err != nil {
				return err
			}
			return e.print(s, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "name\t%s\nlocation\t%s\nuptime\t%s\nready\t%v\nlisten\t%v\nzones\t%d\nqueries\t%d\nrss\t%.1f MiB (peak %.1f MiB)\n",
					s.Name, s.Location, s.Uptime, s.Ready, s.Listen, s.Zones, s.Queries, float64(s.Memory.RSS)/(1<<20), float64(s.Memory.PeakRSS)/(1<<20))
				for _, p := range s.Problems {
					fmt.Fprintf(w, "problem\t%s\n", p)
				}
				if h := s.Health; h != nil {
					for _, p := range h.Parts {
						fmt.Fprintf(w, "health %s\t%s: %s\n", p.Name, okWord(p.OK), p.Why)
					}
				}
			})
		}},
		"health": {help: "exit 0 when the node is healthy", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			if err := e.c.Health(); err != nil {
				return err
			}
			fmt.Println("ok")
			return nil
		}},
		"zones": {help: "list zones", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			zs, err := e.c.Zones()
			if err != nil {
				return err
			}
			return e.print(zs, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ZONE\tSERIAL\tRECORDS\tUPDATED\tSOURCE\tSTATE")
				for _, z := range zs {
					fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\n", z.Origin, z.Serial, z.Records, z.Updated.Format(time.DateTime), z.Source, zoneState(z))
				}
			})
		}},
		"zone": {args: "ORIGIN", help: "show one zone with its records", nargs: 1, run: func(e *ctlEnv, a []string) error {
			z, err := e.c.Zone(a[0])
			if err != nil {
				return err
			}
			if e.json {
				return e.print(z, nil)
			}
			fmt.Printf("; %s serial %d, %d records, %s\n%s", z.Origin, z.Serial, z.Records, zoneState(z.ZoneInfo), z.Text)
			return nil
		}},
		"put": {args: "ORIGIN FILE", help: "add or replace a zone from a master file (- for stdin)", nargs: 2, run: func(e *ctlEnv, a []string) error {
			var text []byte
			var err error
			if a[1] == "-" {
				text, err = io.ReadAll(os.Stdin)
			} else {
				text, err = os.ReadFile(a[1])
			}
			if err != nil {
				return err
			}
			z, err := e.c.PutZone(a[0], text)
			if err != nil {
				return err
			}
			fmt.Printf("%s: serial %d, %d records, serving\n", z.Origin, z.Serial, z.Records)
			return nil
		}},
		"delete": {args: "ORIGIN", help: "remove a zone", nargs: 1, run: func(e *ctlEnv, a []string) error {
			if err := e.c.DeleteZone(a[0]); err != nil {
				return err
			}
			fmt.Println("deleted", a[0])
			return nil
		}},
	}
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

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAILING"
}
