package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// routingCommands are the ctl commands for routing: BGP sessions,
// announced prefixes, the network, and the maintenance switch.
func routingCommands() map[string]ctlCommand {
	return map[string]ctlCommand{
		"sessions": {help: "BGP sessions: state, uptime, last error, prefixes sent, routes received, BFD", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			ss, err := e.c.Sessions()
			if err != nil {
				return err
			}
			return e.print(ss, func(w *tabwriter.Writer) { sessionTable(w, ss) })
		}},
		"prefixes": {help: "announced prefixes: announced, draining or withdrawn, and why", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			ps, err := e.c.Prefixes()
			if err != nil {
				return err
			}
			return e.print(ps, func(w *tabwriter.Writer) { prefixTable(w, ps) })
		}},
		"network": {help: "managed links, their addresses, the DHCP lease, the last changes", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			n, err := e.c.Network()
			if err != nil {
				return err
			}
			return e.print(n, func(w *tabwriter.Writer) { networkTable(w, n) })
		}},
		"drain": {args: "[PREFIX]", help: "maintenance: announce PREFIX (default: all) with GRACEFUL_SHUTDOWN, then withdraw it until restore", nargs: -1, run: func(e *ctlEnv, a []string) error {
			return maintenance(e, a, e.c.Drain)
		}},
		"restore": {args: "[PREFIX]", help: "end maintenance of PREFIX (default: all); announced again while its checks pass", nargs: -1, run: func(e *ctlEnv, a []string) error {
			return maintenance(e, a, e.c.Restore)
		}},
	}
}

func maintenance(e *ctlEnv, args []string, op func(string) ([]api.Prefix, error)) error {
	if len(args) > 1 {
		return fmt.Errorf("at most one prefix (none means all)")
	}
	prefix := ""
	if len(args) == 1 {
		prefix = args[0]
	}
	ps, err := op(prefix)
	if err != nil {
		return err
	}
	return e.print(ps, func(w *tabwriter.Writer) { prefixTable(w, ps) })
}

func sessionTable(w *tabwriter.Writer, ss []api.BGPSession) {
	fmt.Fprintln(w, "PEER\tADDRESS\tASN\tSTATE\tFOR\tSENT\tRECEIVED\tBFD\tLAST ERROR")
	for _, s := range ss {
		asn := fmt.Sprint(s.RemoteASN)
		if s.IBGP {
			asn += " (iBGP)"
		}
		lastErr := s.LastError
		if lastErr != "" {
			lastErr = rtAgo(s.LastErrorAt) + ": " + lastErr
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Name, s.Address, asn, s.State,
			rtSince(s.Since), s.PrefixesSent, s.RoutesReceived, rtDash(s.BFD), rtDash(lastErr))
	}
}

func prefixTable(w *tabwriter.Writer, ps []api.Prefix) {
	fmt.Fprintln(w, "PREFIX\tSTATE\tFOR\tWHY")
	for _, p := range ps {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Prefix, p.State, rtSince(p.Since), p.Reason)
	}
}

func networkTable(w *tabwriter.Writer, n api.Network) {
	fmt.Fprintln(w, "LINK\tSTATE\tMTU\tADDRESSES")
	for _, l := range n.Links {
		st := "down"
		if l.Up {
			st = "up"
		}
		if l.Error != "" {
			st = l.Error
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", l.Name, st, l.MTU, strings.Join(l.Addresses, " "))
	}
	if l := n.Lease; l != nil {
		fmt.Fprintf(w, "\ndhcp lease\t%s on %s from %s, router %s, renew %s, expires %s\n", l.Address, l.Link, l.Server,
			rtDash(l.Router), l.Renew.Format(time.TimeOnly), l.Expires.Format(time.TimeOnly))
	}
	if n.DHCPError != "" {
		fmt.Fprintf(w, "dhcp error\t%s\n", n.DHCPError)
	}
	fmt.Fprintf(w, "\nlast applied\t%s\n", rtAgo(n.LastApply))
	if n.LastError != "" {
		fmt.Fprintf(w, "not applied\t%s\n", n.LastError)
	}
	if len(n.Changes) > 0 {
		fmt.Fprintf(w, "last changes (%s)\t%s\n", rtAgo(n.ChangedAt), strings.Join(n.Changes, "; "))
	}
}

func rtSince(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String()
}

func rtAgo(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return rtSince(t) + " ago"
}

func rtDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
