package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Probe is one query with the answer a correct server must give. The
// benchmark only measures servers that pass every probe: a server answering
// REFUSED or SERVFAIL quickly would otherwise look fast.
type Probe struct {
	Name  string
	Type  uint16
	Check func(*dns.Msg) error
}

func (p Probe) String() string { return p.Name + " " + dns.TypeToString[p.Type] }

// ReadyProbe asks for the last host in the zone file: a server that answers
// it correctly has loaded the whole zone, which is what load time measures.
func ReadyProbe(c ZoneConfig) Probe {
	i := c.Hosts - 1
	name := HostName(c.Origin, i)
	return Probe{name, dns.TypeA, wantAddr(name, dns.TypeA, HostA(i))}
}

// Probes covers every kind of query in the mix, so a server is known to
// answer each kind correctly before its numbers are believed.
func Probes(c ZoneConfig) []Probe {
	first := HostName(c.Origin, 0)
	wild := "probe." + WildParent(c.Origin)
	nx := "nx-probe." + c.Origin
	return []Probe{
		ReadyProbe(c),
		{first, dns.TypeAAAA, wantAddr(first, dns.TypeAAAA, HostAAAA(0))},
		{nx, dns.TypeA, wantNXDOMAIN(c.Origin)},
		{wild, dns.TypeA, wantAddr(wild, dns.TypeA, WildA)},
		{wild, dns.TypeAAAA, wantAddr(wild, dns.TypeAAAA, WildAAAA)},
	}
}

func header(m *dns.Msg, rcode int) error {
	if m.Rcode != rcode {
		return fmt.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[rcode])
	}
	if !m.Authoritative {
		return errors.New("AA bit not set")
	}
	return nil
}

// wantAddr accepts an authoritative answer holding exactly one address
// record for qname (the wildcard's answer must carry the query name, not
// the wildcard's owner).
func wantAddr(qname string, qtype uint16, want netip.Addr) func(*dns.Msg) error {
	return func(m *dns.Msg) error {
		if err := header(m, dns.RcodeSuccess); err != nil {
			return err
		}
		if len(m.Answer) != 1 {
			return fmt.Errorf("%d answer records, want 1", len(m.Answer))
		}
		rr := m.Answer[0]
		if !strings.EqualFold(rr.Header().Name, qname) {
			return fmt.Errorf("answer owner %s, want %s", rr.Header().Name, qname)
		}
		var got netip.Addr
		switch r := rr.(type) {
		case *dns.A:
			if qtype == dns.TypeA {
				got, _ = netip.AddrFromSlice(r.A.To4())
			}
		case *dns.AAAA:
			if qtype == dns.TypeAAAA {
				got, _ = netip.AddrFromSlice(r.AAAA.To16())
			}
		}
		if got != want {
			return fmt.Errorf("answer %s, want %s", rr, want)
		}
		return nil
	}
}

func wantNXDOMAIN(origin string) func(*dns.Msg) error {
	return func(m *dns.Msg) error {
		if err := header(m, dns.RcodeNameError); err != nil {
			return err
		}
		if len(m.Answer) != 0 {
			return fmt.Errorf("%d answer records, want 0", len(m.Answer))
		}
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, origin) {
				return nil
			}
		}
		return errors.New("no SOA in authority section")
	}
}

// Ask sends p once over UDP and checks the answer.
func Ask(addr string, p Probe, timeout time.Duration) error {
	q := new(dns.Msg)
	q.SetQuestion(p.Name, p.Type)
	q.RecursionDesired = false
	c := &dns.Client{Net: "udp", Timeout: timeout}
	m, _, err := c.Exchange(q, addr)
	if err != nil {
		return err
	}
	if err := p.Check(m); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// WaitReady polls addr with p until the answer is correct and returns the
// time since the process was started: the load time. It gives up when the
// process exits, ctx ends or limit passes, saying what it saw last.
func WaitReady(ctx context.Context, proc *Proc, addr string, p Probe, limit time.Duration) (time.Duration, error) {
	deadline := proc.Started.Add(limit)
	var last error
	for {
		// A short timeout: before the socket is bound the kernel refuses at
		// once; after, a loading server may hold the query, and we want to
		// notice the moment it is ready, not 5 s later.
		err := Ask(addr, p, 50*time.Millisecond)
		if err == nil {
			return time.Since(proc.Started), nil
		}
		last = err
		if proc.Exited() {
			why := exitReason(proc)
			return 0, fmt.Errorf("%s exited before answering (%v); log %s:\n%s", proc.Name, why, proc.LogFile, indent(proc.Tail(15)))
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: no correct answer to %s within %s; last: %v; log %s:\n%s", proc.Name, p, limit, last, proc.LogFile, indent(proc.Tail(15)))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func indent(s string) string {
	if s == "" {
		return "    (empty)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// exitReason says how a server that should still run ended.
func exitReason(p *Proc) error {
	if err := p.Err(); err != nil {
		return err
	}
	return errors.New("exited with status 0")
}
