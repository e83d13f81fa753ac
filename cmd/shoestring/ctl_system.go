package main

import (
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"
)

// systemCommands are the ctl commands for the box itself, served where
// shoestring runs as PID 1: what it is, its log, reboot and poweroff.
func systemCommands() map[string]ctlCommand {
	return map[string]ctlCommand{
		"system": {help: "the box: board, slot, version, data partition, clock, watchdog", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			s, err := e.c.System()
			if err != nil {
				return err
			}
			return e.print(s, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "board\t%s\nversion\t%s\nslot\t%s\nkernel\t%s\nhostname\t%s\nuptime\t%s\n", s.Board, s.Version, s.Slot, s.Kernel, s.Hostname, s.Uptime)
				if s.BootToServe != "" {
					fmt.Fprintf(w, "boot to serving\t%s\n", s.BootToServe)
				}
				if s.Data.Problem != "" {
					fmt.Fprintf(w, "data\tNOT IN USE: %s\n", s.Data.Problem)
				} else {
					fmt.Fprintf(w, "data\t%s, %.1f of %.1f GiB free\n", s.Data.Device, float64(s.Data.Free)/(1<<30), float64(s.Data.Size)/(1<<30))
				}
				fmt.Fprintf(w, "config\t%s\n", s.Config)
				clock := "not synchronised"
				if s.Clock.Synced {
					clock = fmt.Sprintf("synchronised with %s at %s (offset %s)", s.Clock.Server, s.Clock.LastSync.Format(time.DateTime), s.Clock.LastOffset)
				}
				fmt.Fprintf(w, "clock\t%s\n", clock)
				wd := "none"
				if s.Watchdog.Armed {
					wd = fmt.Sprintf("%s, timeout %s, fed %s ago", s.Watchdog.Device, s.Watchdog.Timeout, time.Since(s.Watchdog.LastFed).Round(time.Second))
					if s.Watchdog.Starved != "" {
						wd += ", NOT FED: " + s.Watchdog.Starved
					}
				}
				fmt.Fprintf(w, "watchdog\t%s\nmemory\t%.0f of %.0f MiB available\n", wd, float64(s.MemFree)/(1<<20), float64(s.MemTotal)/(1<<20))
				for name, n := range s.Restarts {
					fmt.Fprintf(w, "restarts\t%s: %d\n", name, n)
				}
			})
		}},
		"logs": {args: "[-n N] [-f] [-disk]", help: "the box log (RAM ring; -disk: persisted, previous boots too; -f: follow)", nargs: -1, run: func(e *ctlEnv, a []string) error {
			fs := flag.NewFlagSet("logs", flag.ContinueOnError)
			n := fs.Int("n", 100, "lines")
			follow := fs.Bool("f", false, "follow")
			disk := fs.Bool("disk", false, "the log persisted on the data partition")
			if err := fs.Parse(a); err != nil {
				return err
			}
			l, err := e.c.SystemLogs(*n, 0, *disk)
			if err != nil {
				return err
			}
			if e.json && !*follow {
				return e.print(l, nil)
			}
			for _, s := range l.Disk {
				fmt.Println(s)
			}
			for _, x := range l.Lines {
				fmt.Println(x.Text)
			}
			for *follow && !*disk {
				time.Sleep(time.Second)
				next := l.Next
				if l, err = e.c.SystemLogs(0, next, false); err != nil {
					return err
				}
				if l.Lost > 0 {
					fmt.Fprintf(os.Stderr, "(%d lines missed)\n", l.Lost)
				}
				for _, x := range l.Lines {
					fmt.Println(x.Text)
				}
			}
			return nil
		}},
		"reboot": {args: "[-tryboot]", help: "drain, then reboot (-tryboot: the other slot, once)", nargs: -1, run: func(e *ctlEnv, a []string) error {
			fs := flag.NewFlagSet("reboot", flag.ContinueOnError)
			try := fs.Bool("tryboot", false, "boot the other slot once")
			if err := fs.Parse(a); err != nil {
				return err
			}
			if err := e.c.Reboot(*try); err != nil {
				return err
			}
			fmt.Println("rebooting: the node drains first")
			return nil
		}},
		"poweroff": {help: "drain, then power off", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			if err := e.c.Poweroff(); err != nil {
				return err
			}
			fmt.Println("powering off: the node drains first")
			return nil
		}},
	}
}
