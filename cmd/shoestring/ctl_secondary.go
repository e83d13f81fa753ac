package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// secondaryCommands are the ctl commands for transfers: status per zone,
// refresh, retransfer, and secondary zones added at run time.
func secondaryCommands() map[string]ctlCommand {
	return map[string]ctlCommand{
		"transfers": {help: "secondary zones: serial here and at the primary, last refresh, next refresh, expiry", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			s, err := e.c.Secondary()
			if err != nil {
				return err
			}
			return e.print(s, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ZONE\tKIND\tSERIAL\tPRIMARY SERIAL\tLAST REFRESH\tRESULT\tNEXT\tEXPIRES\tAXFR/IXFR")
				for _, z := range s.Zones {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\n", z.Origin, z.Kind, serialHere(z), primarySerial(z),
						ago(z.LastAttempt), result(z), until(z.NextRefresh), expiry(z), z.AXFRs, z.IXFRs)
				}
				for _, c := range s.Catalogs {
					fmt.Fprintf(w, "\ncatalog %s\tserial %d\t%d members\n", c.Origin, c.Serial, len(c.Members))
					if c.Error != "" {
						fmt.Fprintf(w, "  error\t%s\n", c.Error)
					}
					for _, p := range c.Problems {
						fmt.Fprintf(w, "  problem\t%s\n", p)
					}
				}
				o := s.Outbound
				fmt.Fprintf(w, "\noutbound\tAXFR %d, IXFR %d served, %d refused, %d NOTIFY sent\n", o.AXFRs, o.IXFRs, o.Refused, o.Notifies)
				if o.Catalog != "" {
					fmt.Fprintf(w, "produced catalog\t%s\n", o.Catalog)
				}
			})
		}},
		"transfer": {args: "ORIGIN", help: "one secondary zone's transfer state in full", nargs: 1, run: func(e *ctlEnv, a []string) error {
			z, err := e.c.SecondaryZone(a[0])
			if err != nil {
				return err
			}
			return e.print(z, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "zone\t%s (%s%s)\n", z.Origin, z.Kind, map[bool]string{true: " of " + z.Catalog}[z.Catalog != ""])
				fmt.Fprintf(w, "primaries\t%s\n", strings.Join(z.Primaries, ", "))
				fmt.Fprintf(w, "serial here\t%s\nserial at primary\t%s (%s)\n", serialHere(z), primarySerial(z), z.Primary)
				fmt.Fprintf(w, "last refresh\t%s: %s\n", ago(z.LastAttempt), result(z))
				if z.LastError != "" {
					fmt.Fprintf(w, "last error\t%s\n", z.LastError)
				}
				fmt.Fprintf(w, "last success\t%s\nlast transfer\t%s\nnext refresh\t%s\nexpires\t%s\n",
					ago(z.LastSuccess), ago(z.LastTransfer), until(z.NextRefresh), expiry(z))
				fmt.Fprintf(w, "transfers\tAXFR %d, IXFR %d, rejected %d\n", z.AXFRs, z.IXFRs, z.Rejected)
			})
		}},
		"refresh": {args: "ORIGIN", help: "check a secondary zone's primary now (IXFR when it is newer)", nargs: 1, run: func(e *ctlEnv, a []string) error {
			if err := e.c.Refresh(a[0], false); err != nil {
				return err
			}
			fmt.Println("refresh started for", a[0], "(see `ctl transfer", a[0]+"`)")
			return nil
		}},
		"retransfer": {args: "ORIGIN", help: "transfer a secondary zone in full now, accepting the primary's serial even if older", nargs: 1, run: func(e *ctlEnv, a []string) error {
			if err := e.c.Refresh(a[0], true); err != nil {
				return err
			}
			fmt.Println("retransfer started for", a[0], "(see `ctl transfer", a[0]+"`)")
			return nil
		}},
		"add-secondary": {args: "ORIGIN ADDR[:PORT][@KEY]...", help: "add a secondary zone at run time (kept across restarts); ADDR is an IP address or a tailnet name", nargs: -1, run: func(e *ctlEnv, a []string) error {
			if len(a) < 2 {
				return fmt.Errorf("usage: shoestring ctl add-secondary ORIGIN ADDR[:PORT][@KEY]...")
			}
			z, err := e.c.AddSecondary(a[0], a[1:])
			if err != nil {
				return err
			}
			fmt.Printf("%s: secondary of %s\n", z.Origin, strings.Join(z.Primaries, ", "))
			return nil
		}},
		"remove-secondary": {args: "ORIGIN", help: "remove a secondary zone added with add-secondary, and its data", nargs: 1, run: func(e *ctlEnv, a []string) error {
			if err := e.c.RemoveSecondary(a[0]); err != nil {
				return err
			}
			fmt.Println("removed", a[0])
			return nil
		}},
	}
}

func serialHere(z api.SecondaryZone) string {
	if !z.HasData {
		return "none"
	}
	return fmt.Sprint(z.Serial)
}

func primarySerial(z api.SecondaryZone) string {
	if z.PrimarySerial == nil {
		return "?"
	}
	return fmt.Sprint(*z.PrimarySerial)
}

func result(z api.SecondaryZone) string {
	r := z.LastResult
	if z.Refreshing {
		r = "refreshing… (last: " + r + ")"
	}
	if z.LastError != "" && z.LastResult == "failed" {
		r = "failed: " + z.LastError
	}
	return r
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func until(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return "in " + time.Until(t).Round(time.Second).String()
}

func expiry(z api.SecondaryZone) string {
	switch {
	case z.Expired:
		return "EXPIRED (SERVFAIL)"
	case z.ExpiresAt.IsZero():
		return "-"
	}
	return until(z.ExpiresAt)
}
