package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// updateCommands are the ctl commands for over-the-air updates: install
// a bundle into the inactive slot, and show both slots.
func updateCommands() map[string]ctlCommand {
	return map[string]ctlCommand{
		"update": {args: "[-allow-downgrade] [-no-reboot] FILE|URL", help: "install a bundle into the inactive slot, then drain and reboot into it once; it is committed after its soak, or the box falls back (a URL is fetched by the node)", nargs: -1, run: ctlUpdate},
		"slots": {help: "both A/B slots: version, state, the trial and its boots, the last update's outcome", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			s, err := e.c.Slots()
			if err != nil {
				return err
			}
			return e.print(s, func(w *tabwriter.Writer) { slotsTable(w, s) })
		}},
	}
}

func ctlUpdate(e *ctlEnv, args []string) error {
	fs := flag.NewFlagSet("update", flag.ContinueOnError)
	allow := fs.Bool("allow-downgrade", false, "install even when the bundle's version is not newer than the running one")
	noReboot := fs.Bool("no-reboot", false, "leave the new slot armed: its trial starts at the next reboot")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: shoestring ctl update [-allow-downgrade] [-no-reboot] FILE|URL")
	}
	src := fs.Arg(0)
	type result struct {
		s   api.UpdateStatus
		err error
	}
	done := make(chan result, 1)
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		go func() {
			s, err := e.c.UpdateURLWith(api.UpdateRequest{URL: src, AllowDowngrade: *allow, NoReboot: *noReboot})
			done <- result{s, err}
		}()
	} else {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		go func() {
			s, err := e.c.UpdateWith(f, api.UpdateRequest{AllowDowngrade: *allow, NoReboot: *noReboot})
			done <- result{s, err}
		}()
	}
	every := e.every
	if every == 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	out := e.stdout()
	last := ""
	for {
		select {
		case r := <-done:
			if r.err != nil {
				return fmt.Errorf("update: %w", r.err)
			}
			if e.json {
				return e.print(r.s, nil)
			}
			fmt.Fprintln(out, progressLine(r.s))
			if r.s.State == "rebooting" {
				fmt.Fprintf(out, "installed %s in slot %s: the node drains and reboots into it once; it is committed after its soak or falls back (see shoestring ctl slots)\n", r.s.Version, r.s.Slot)
			} else {
				fmt.Fprintf(out, "installed %s in slot %s and armed: the next reboot tries it once, then soaks and commits it or falls back\n", r.s.Version, r.s.Slot)
			}
			return nil
		case <-tick.C:
			s, err := e.c.UpdateStatus()
			if err != nil || s.State != "receiving" || e.json {
				continue
			}
			if l := progressLine(s); l != last {
				fmt.Fprintln(out, l)
				last = l
			}
		}
	}
}

func progressLine(s api.UpdateStatus) string {
	what := s.Version
	if what == "" {
		what = "bundle"
	}
	l := fmt.Sprintf("%s %s → slot %s: %s", s.State, what, rtDash(s.Slot), mib(s.Bytes))
	if s.Total > 0 {
		l += fmt.Sprintf(" of %s (%d%%)", mib(s.Total), s.Bytes*100/s.Total)
	}
	if s.Part != "" {
		l += ", writing " + s.Part
	}
	if s.Resumes > 0 {
		l += fmt.Sprintf(", resumed %d×", s.Resumes)
	}
	return l
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func slotsTable(w *tabwriter.Writer, s api.SlotsStatus) {
	fmt.Fprintln(w, "SLOT\tVERSION\tSTATE\tRUNNING\tCHANGED\tREASON")
	for _, i := range s.Slots {
		run := "-"
		if i.Running {
			run = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", i.Name, rtDash(i.Version), i.Status, run, rtAgo(i.Changed), rtDash(i.Reason))
	}
	fmt.Fprintf(w, "\nboot method\t%s\n", s.Method)
	fmt.Fprintf(w, "committed\t%s\n", s.Committed)
	if s.Try != "" {
		fmt.Fprintf(w, "next boot\ttries slot %s once\n", s.Try)
	}
	if s.Trial != "" {
		fmt.Fprintf(w, "on trial\tslot %s, %d boot(s)\n", s.Trial, s.Boots)
	}
	for _, b := range s.Bad {
		fmt.Fprintf(w, "refused\t%s (failed its trial %s): %s\n", b.Version, rtAgo(b.At), b.Reason)
	}
	if o := s.Last; o != nil {
		fmt.Fprintf(w, "last update\t%s %s (slot %s, %s, from %s): %s\n", o.Result, rtDash(o.Version), rtDash(o.Slot), rtAgo(o.At), rtDash(o.Source), o.Reason)
	} else {
		fmt.Fprintf(w, "last update\tnone\n")
	}
}
