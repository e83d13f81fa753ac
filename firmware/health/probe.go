package health

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// errNoAnswer marks a probe that got no DNS reply at all (timeout, port
// unreachable): the server is not answering, as opposed to answering
// wrongly.
var errNoAnswer = errors.New("no answer")

// dnsProbe returns the probe that asks target over UDP, as a client
// would, and checks the reply: NOERROR, from this node (NSID), and for a
// canary authoritative with at least one record of the asked type.
func dnsProbe(nsid string) ProbeFunc {
	return func(ctx context.Context, target netip.AddrPort, q Query) error {
		m := new(dns.Msg)
		m.SetQuestion(q.Name, q.Type)
		m.Question[0].Qclass = q.Class
		m.RecursionDesired = false
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(1232)
		opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		m.Extra = append(m.Extra, opt)
		wire, err := m.Pack()
		if err != nil {
			return err
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "udp", target.String())
		if err != nil {
			return err
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			c.SetDeadline(dl)
		}
		if _, err := c.Write(wire); err != nil {
			return fmt.Errorf("%w: %v", errNoAnswer, err)
		}
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return fmt.Errorf("%w (timed out)", errNoAnswer)
				}
				return fmt.Errorf("%w: %v", errNoAnswer, err)
			}
			r := new(dns.Msg)
			if r.Unpack(buf[:n]) != nil || r.Id != m.Id || !r.Response {
				continue // not ours; keep waiting for the real reply
			}
			return checkReply(r, q, nsid)
		}
	}
}

func checkReply(r *dns.Msg, q Query, nsid string) error {
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("answered %s", dns.RcodeToString[r.Rcode])
	}
	if nsid != "" {
		got, ok := replyNSID(r)
		if !ok {
			return errors.New("reply without NSID: not provably from this node")
		}
		if got != nsid {
			return fmt.Errorf("answered by NSID %q, not this node (%q): the service address is not local", got, nsid)
		}
	}
	if !q.canary() {
		return nil
	}
	if !r.Authoritative {
		return errors.New("answer not authoritative")
	}
	for _, rr := range r.Answer {
		if rr.Header().Rrtype == q.Type {
			return nil
		}
	}
	return fmt.Errorf("no %s record in the answer", dns.TypeToString[q.Type])
}

func replyNSID(r *dns.Msg) (string, bool) {
	opt := r.IsEdns0()
	if opt == nil {
		return "", false
	}
	for _, o := range opt.Option {
		if n, ok := o.(*dns.EDNS0_NSID); ok {
			b, err := hex.DecodeString(n.Nsid)
			if err != nil {
				return "", false
			}
			return string(b), true
		}
	}
	return "", false
}
