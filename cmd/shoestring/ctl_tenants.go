package main

import (
	"github.com/shoestring-dns/shoestring/firmware/config"

	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/health"
	"github.com/shoestring-dns/shoestring/firmware/logring"
	"github.com/shoestring-dns/shoestring/firmware/tenant"
)

// tenantCommands are the ctl commands of a host (shoestring host): its
// tenants, and adding and removing one.
func tenantCommands() map[string]ctlCommand {
	return map[string]ctlCommand{
		"tenants": {help: "a host's tenants: state, process, prefixes, missing protections", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			h, err := e.c.Tenants()
			if err != nil {
				return err
			}
			return e.print(h, func(w *tabwriter.Writer) { tenantTable(w, h) })
		}},
		"tenant": {args: "add NAME -prefix P -address A [-zone FILE] [-primary ADDR[@KEY] -secondary ZONE -catalog ZONE -tsig NAME:ALG:SECRET -tsig-file FILE] [-dnstap IP:PORT] [-netns] [-cpu N -memory SIZE -pids N -cpuset CORES -canary Q -wait D] | remove NAME [-keep-data] | show NAME | secondary NAME | log NAME",
			help: "add a tenant to a host (idempotent), remove it with everything it had, show it, its secondary zones or its recent log", nargs: -1, run: tenantCommand},
	}
}

func tenantCommand(e *ctlEnv, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: shoestring ctl tenant add|remove|show NAME [flags]")
	}
	op, name, rest := args[0], args[1], args[2:]
	fs := flag.NewFlagSet("tenant "+op, flag.ContinueOnError)
	switch op {
	case "add":
		var req tenant.AddRequest
		req.Name = name
		var prefixes, addrs, zones listFlag
		fs.Var(&prefixes, "prefix", "prefix announced for the tenant (repeat for more)")
		fs.Var(&addrs, "address", "service address inside a prefix (repeat for more)")
		fs.Var(&zones, "zone", "zone master file, [ORIGIN=]FILE; origin default: the file name without .zone (repeat for more)")
		fs.Float64Var(&req.CPU, "cpu", 0, "cores' worth of CPU time (1.5); 0: no limit")
		memory := fs.String("memory", "", "memory limit: 512M, 2G, or MiB; empty: no limit")
		fs.IntVar(&req.Pids, "pids", 0, "most processes and threads (default 512)")
		fs.StringVar(&req.Cpuset, "cpuset", "", "cores to pin it to (2-3)")
		fs.StringVar(&req.Canary, "canary", "", "health check question, \"NAME TYPE\" (default: SOA of its first zone)")
		wait := fs.Duration("wait", 0, "wait up to this long until every prefix is announced")
		rrl := fs.Int("rrl", 0, "response rate limiting for the tenant at this many responses per second per client prefix (its dns.rrl); 0: off")
		var secrets listFlag
		fs.Var(&secrets, "cookie-secret", "the tenant's DNS cookie secret, 32 hex digits (repeat for rollover; the first mints)")
		var sf secondaryFlags
		fs.Var(&sf.primaries, "primary", "primary to transfer the -secondary zones and -catalog catalogs from, ADDR[:PORT][@KEY] (repeat for more); without @KEY: the only -tsig key, if one is given")
		fs.Var(&sf.zones, "secondary", "zone to transfer from the primaries (repeat for more)")
		fs.Var(&sf.catalogs, "catalog", "catalog zone (RFC 9432) to transfer from the primaries; its members are transferred too (repeat for more)")
		fs.Var(&sf.keys, "tsig", "TSIG key NAME:ALGORITHM:SECRET (base64), e.g. xfr:hmac-sha256:... (repeat for more)")
		fs.Var(&sf.keyFiles, "tsig-file", "file holding TSIG keys, one NAME:ALGORITHM:SECRET a line (keeps the secret off the command line)")
		tapTarget := fs.String("dnstap", "", "the tenant's own dnstap collector, IP:PORT (its queries and responses, identity: its name)")
		fs.BoolVar(&req.NetworkNamespace, "netns", false, "run it in a network namespace of its own: it answers on the sockets the host passes and reaches nothing but its -primary and -dnstap addresses, which the host connects for it")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if *tapTarget != "" {
			req.Dnstap = &config.Dnstap{Target: *tapTarget}
		}
		sec, err := sf.secondary()
		if err != nil {
			return err
		}
		req.Secondary = sec
		req.Prefixes, req.Addresses = prefixes, addrs
		if *rrl > 0 || len(secrets) > 0 {
			req.DNS = &config.DNSAbuse{CookieSecrets: secrets}
			req.DNS.RRL.Enabled, req.DNS.RRL.ResponsesPerSecond = *rrl > 0, *rrl
		}
		mb, err := parseMiB(*memory)
		if err != nil {
			return err
		}
		req.MemoryMB = mb
		req.ZoneText = map[string]string{}
		for _, z := range zones {
			origin, file, ok := strings.Cut(z, "=")
			if !ok {
				file, origin = z, strings.TrimSuffix(filepath.Base(z), ".zone")
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			req.ZoneText[origin] = string(b)
		}
		start := time.Now()
		st, err := e.c.AddTenant(req)
		if err != nil {
			return err
		}
		if *wait > 0 {
			if st, err = waitAnnounced(e, name, *wait); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "tenant %s announced after %s\n", name, time.Since(start).Round(time.Millisecond))
		}
		return e.print(st, func(w *tabwriter.Writer) { tenantDetail(w, st) })
	case "remove":
		keep := fs.Bool("keep-data", false, "keep the tenant's data directory (zones, store)")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		start := time.Now()
		if err := e.c.RemoveTenant(name, *keep); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout(), "tenant %s removed in %s\n", name, time.Since(start).Round(time.Millisecond))
		return nil
	case "secondary":
		var st api.SecondaryStatus
		if err := e.c.TenantGet(name, "api/v1/secondary", &st); err != nil {
			return err
		}
		return e.print(st, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "ZONE\tSERIAL\tPRIMARY\tLAST RESULT\tFAILURES\tERROR")
			for _, z := range st.Zones {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%s\n", z.Origin, z.Serial, z.Primary, z.LastResult, z.Failures, z.LastError)
			}
		})
	case "log":
		var lines []logring.Line
		if err := e.c.TenantGet(name, "api/v1/logs", &lines); err != nil {
			return err
		}
		return e.print(lines, func(w *tabwriter.Writer) {
			for _, l := range lines {
				fmt.Fprintf(w, "%s %s %s\n", l.Time.Format(time.RFC3339), l.Level, l.Message)
			}
		})
	case "show":
		st, err := e.c.Tenant(name)
		if err != nil {
			return err
		}
		return e.print(st, func(w *tabwriter.Writer) { tenantDetail(w, st) })
	}
	return fmt.Errorf("tenant: unknown operation %q (add, remove, show, secondary, log)", op)
}

// secondaryFlags are tenant add's secondary flags.
type secondaryFlags struct {
	primaries, zones, catalogs, keys, keyFiles listFlag
}

// secondary turns the flags into the tenant's secondary section, nil
// when none is given.
func (f secondaryFlags) secondary() (*config.Secondary, error) {
	keys := append(listFlag{}, f.keys...)
	for _, file := range f.keyFiles {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("-tsig-file: %w", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				keys = append(keys, l)
			}
		}
	}
	if len(f.primaries)+len(f.zones)+len(f.catalogs)+len(keys) == 0 {
		return nil, nil
	}
	if len(f.primaries) == 0 {
		return nil, fmt.Errorf("-secondary, -catalog and -tsig need at least one -primary")
	}
	if len(f.zones)+len(f.catalogs) == 0 {
		return nil, fmt.Errorf("-primary: name the zones to transfer with -secondary ZONE or -catalog ZONE")
	}
	sec := &config.Secondary{}
	for _, k := range keys {
		name, rest, ok1 := strings.Cut(k, ":")
		alg, secret, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || name == "" {
			return nil, fmt.Errorf("-tsig %q: want NAME:ALGORITHM:SECRET", redact(k))
		}
		sec.Keys = append(sec.Keys, config.TSIGKey{Name: name, Algorithm: alg, Secret: secret})
	}
	var prim []config.Remote
	for _, p := range f.primaries {
		r, err := config.ParseRemote(p)
		if err != nil {
			return nil, fmt.Errorf("-primary %q: %w", p, err)
		}
		if r.Key == "" && len(sec.Keys) == 1 {
			r.Key = sec.Keys[0].Name
		}
		prim = append(prim, r)
	}
	for _, z := range f.zones {
		sec.Zones = append(sec.Zones, config.SecondaryZone{Origin: z, Primaries: prim})
	}
	for _, c := range f.catalogs {
		sec.Catalogs = append(sec.Catalogs, config.CatalogZone{Origin: c, Primaries: prim})
	}
	return sec, nil
}

// redact hides a TSIG key's secret in an error message.
func redact(k string) string {
	if i := strings.LastIndex(k, ":"); i >= 0 {
		return k[:i+1] + "…"
	}
	return "…"
}

// waitAnnounced polls until every prefix of the tenant is announced.
func waitAnnounced(e *ctlEnv, name string, d time.Duration) (tenant.Status, error) {
	deadline := time.Now().Add(d)
	for {
		st, err := e.c.Tenant(name)
		if err == nil && allAnnounced(st.Prefixes) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("tenant %s: not announced after %s", name, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func allAnnounced(ps []health.PrefixStatus) bool {
	for _, p := range ps {
		if p.State != health.Announced {
			return false
		}
	}
	return len(ps) > 0
}

// parseMiB reads 512M, 2G or a number of MiB.
func parseMiB(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	mult := 1
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1024, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		s = strings.TrimSuffix(s, "M")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("memory %q: like 512M, 2G or a number of MiB", s)
	}
	return n * mult, nil
}

func tenantTable(w io.Writer, h tenant.HostStatus) {
	fmt.Fprintf(w, "cgroups %s (%s)\n\n", h.Cgroups, strings.Join(h.Controllers, " "))
	fmt.Fprintln(w, "TENANT\tSTATE\tPID\tUID\tRESTARTS\tOOM\tPREFIXES\tMISSING PROTECTIONS")
	for _, t := range h.Tenants {
		var ps []string
		for _, p := range t.Prefixes {
			ps = append(ps, fmt.Sprintf("%v %s", p.Prefix, p.State))
		}
		missing := "-"
		if t.Protections != nil && len(t.Protections.Missing) > 0 {
			missing = strings.Join(t.Protections.Missing, "; ")
		} else if t.Protections == nil {
			missing = "(not reported yet)"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", t.Name, t.State, t.PID, t.UID, t.Restarts, t.OOMKills, strings.Join(ps, ", "), missing)
	}
}

func tenantDetail(w io.Writer, t tenant.Status) {
	fmt.Fprintf(w, "tenant\t%s\nstate\t%s\npid\t%d\nuid\t%d\nrestarts\t%d\n", t.Name, t.State, t.PID, t.UID, t.Restarts)
	if t.LastExit != "" {
		fmt.Fprintf(w, "last exit\t%s\n", t.LastExit)
	}
	fmt.Fprintf(w, "zones\t%s\naddresses\t%s\n", strings.Join(t.Zones, " "), strings.Join(t.Spec.Addresses, " "))
	for _, p := range t.Prefixes {
		fmt.Fprintf(w, "prefix %v\t%s: %s\n", p.Prefix, p.State, p.Reason)
	}
	fmt.Fprintf(w, "limits\tcpu %v, memory %d MiB, pids %d, cpuset %q\n", t.Spec.CPU, t.Spec.MemoryMB, t.Spec.Pids, t.Spec.Cpuset)
	if p := t.Protections; p != nil {
		fmt.Fprintf(w, "root\t%s\ncapabilities\t%s\nbind\tdenied %v (%s)\npid namespace\t%v (%d processes seen)\n", strings.Join(p.Root, " "), p.CapEff, p.BindDenied, p.Seccomp, p.PIDNamespace, p.Processes)
		if len(p.Missing) > 0 {
			fmt.Fprintf(w, "MISSING\t%s\n", strings.Join(p.Missing, "; "))
		}
	}
}
