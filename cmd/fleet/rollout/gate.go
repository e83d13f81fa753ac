package rollout

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/cmd/fleet/inventory"
	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
	"github.com/shoestring-dns/shoestring/cmd/fleet/serial"
	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/reconfig"
)

// Gate outcomes. No data is inconclusive, never a pass.
const (
	Pass         = "pass"
	Fail         = "fail"
	Inconclusive = "inconclusive"
)

// Result is one gate's outcome on one node.
type Result struct {
	Gate    string `json:"gate"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail"`
}

// Query is a canary: a question the node must answer itself (its NSID)
// with NOERROR and at least one record.
type Query struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// ParseQuery reads "NAME[/TYPE]" (type A by default).
func ParseQuery(s string) (Query, error) {
	name, typ, _ := strings.Cut(s, "/")
	if typ == "" {
		typ = "A"
	}
	if _, ok := dns.StringToType[strings.ToUpper(typ)]; !ok {
		return Query{}, fmt.Errorf("canary %q: unknown type %q", s, typ)
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return Query{}, fmt.Errorf("canary %q: bad name", s)
	}
	return Query{Name: dns.Fqdn(name), Type: strings.ToUpper(typ)}, nil
}

// gateInput is what the gates of one node read.
type gateInput struct {
	kind     string
	node     inventory.Node
	state    live.State
	target   string // hash of the document applied; a firmware rollout's version
	cfg      *config.Config
	serials  []serial.Row
	canaries []Query
	// baseline is the node's traffic before the change (nil: none was
	// measured); current its traffic since gating began (nil: not yet).
	baseline, current *live.Rate
}

// evaluate runs every gate once.
// The first gate is what the rollout changes: the running config, or
// the committed firmware.
func evaluate(in gateInput) []Result {
	first := gateConfig
	if in.kind == KindFirmware {
		first = gateFirmware
	}
	return []Result{first(in), gateHealthy(in), gateCanary(in), gateSerials(in), gateBGP(in), gateServfail(in), gateQPS(in)}
}

// Traffic gate thresholds: the SERVFAIL share may not exceed twice the
// baseline's and the baseline plus one point (and counts only from
// minServfails SERVFAILs on); answered qps may not fall below half the
// baseline, judged only from a baseline of minBaselineQPS.
const (
	minServfails   = 3
	minBaselineQPS = 1.0
)

// trafficInputs returns a traffic gate's baseline and measurement, or
// false with the gate inconclusive while one is missing (no data is
// never a pass).
func trafficInputs(gate string, in gateInput) (Result, *live.Rate, *live.Rate, bool) {
	r := Result{Gate: gate}
	switch {
	case in.baseline == nil:
		r.Outcome, r.Detail = Inconclusive, "no baseline from before the change (the node's /metrics)"
	case in.current == nil:
		r.Outcome, r.Detail = Inconclusive, "measuring since the change"
	default:
		return r, in.baseline, in.current, true
	}
	return r, nil, nil, false
}

// gateServfail: the node's SERVFAIL share since the change is not worse
// than its own before it.
func gateServfail(in gateInput) Result {
	r, b, c, ok := trafficInputs("servfail", in)
	if !ok {
		return r
	}
	base, now := b.ServfailShare(), c.ServfailShare()
	detail := fmt.Sprintf("SERVFAIL %d of %d responses (%.1f%%), baseline %.1f%% of %d", c.Servfails, c.Responses, 100*now, 100*base, b.Responses)
	if c.Servfails >= minServfails && now > max(2*base, base+0.01) {
		r.Outcome, r.Detail = Fail, detail
		return r
	}
	r.Outcome, r.Detail = Pass, detail
	return r
}

// gateQPS: the node answers at least half the queries per second it
// answered before the change.
func gateQPS(in gateInput) Result {
	r, b, c, ok := trafficInputs("qps", in)
	if !ok {
		return r
	}
	detail := fmt.Sprintf("answered %.1f qps over %.1fs, baseline %.1f qps", c.QPS, c.Window, b.QPS)
	switch {
	case b.QPS < minBaselineQPS:
		r.Outcome, r.Detail = Pass, detail+" (too little before to compare)"
	case c.QPS < b.QPS/2:
		r.Outcome, r.Detail = Fail, detail
	default:
		r.Outcome, r.Detail = Pass, detail
	}
	return r
}

// gateConfig: the node runs the document applied.
func gateConfig(in gateInput) Result {
	r := Result{Gate: "config"}
	c := in.state.Config
	switch {
	case !in.state.Reached || c == nil:
		r.Outcome, r.Detail = Inconclusive, "node not reached"
	case c.Hash == in.target:
		r.Outcome, r.Detail = Pass, fmt.Sprintf("running generation %d", c.Generation)
	case c.Last != nil && c.Last.Hash == in.target && c.Last.State == reconfig.StateRolledBack:
		r.Outcome, r.Detail = Fail, "node rolled the config back: "+c.Last.Error
	default:
		r.Outcome, r.Detail = Inconclusive, "not running it yet"
	}
	return r
}

// gateHealthy: the node's serving health part is OK.
func gateHealthy(in gateInput) Result {
	r := Result{Gate: "healthy"}
	h := in.state.Health
	if !in.state.Reached || h == nil {
		r.Outcome, r.Detail = Inconclusive, "no health report"
		return r
	}
	p, ok := h.Part("serving")
	switch {
	case !ok:
		r.Outcome, r.Detail = Inconclusive, "no serving part"
	case p.OK:
		r.Outcome, r.Detail = Pass, p.Why
	default:
		r.Outcome, r.Detail = Fail, p.Why
	}
	return r
}

// gateCanary: each canary answered by this node (NSID), NOERROR, with
// records. A timeout is inconclusive; a wrong answer fails.
func gateCanary(in gateInput) Result {
	r := Result{Gate: "canary"}
	if len(in.canaries) == 0 {
		r.Outcome, r.Detail = Pass, "no canary queries for this rollout"
		return r
	}
	want := in.cfg.DNS.NSID
	if want == "" {
		want = in.cfg.Node.Name
	}
	c := &dns.Client{Timeout: time.Second}
	var ok []string
	for _, q := range in.canaries {
		m := new(dns.Msg)
		m.SetQuestion(q.Name, dns.StringToType[q.Type])
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		resp, _, err := c.Exchange(m, in.node.DNSAddr())
		if err != nil {
			r.Outcome, r.Detail = Inconclusive, fmt.Sprintf("%s %s: %v", q.Name, q.Type, err)
			return r
		}
		nsid := ""
		if opt := resp.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if n, isNSID := o.(*dns.EDNS0_NSID); isNSID {
					b, _ := hex.DecodeString(n.Nsid)
					nsid = string(b)
				}
			}
		}
		switch {
		case want != "" && nsid != want:
			r.Outcome, r.Detail = Fail, fmt.Sprintf("%s %s answered by %q, not this node (%q)", q.Name, q.Type, nsid, want)
			return r
		case resp.Rcode != dns.RcodeSuccess:
			r.Outcome, r.Detail = Fail, fmt.Sprintf("%s %s: %s", q.Name, q.Type, dns.RcodeToString[resp.Rcode])
			return r
		case len(resp.Answer) == 0:
			r.Outcome, r.Detail = Fail, fmt.Sprintf("%s %s: no records", q.Name, q.Type)
			return r
		}
		ok = append(ok, q.Name+" "+q.Type)
	}
	r.Outcome, r.Detail = Pass, "answered "+strings.Join(ok, ", ")
	return r
}

// gateSerials: no zone behind its primary.
func gateSerials(in gateInput) Result {
	r := Result{Gate: "serials"}
	if !in.state.Reached {
		r.Outcome, r.Detail = Inconclusive, "node not reached"
		return r
	}
	if len(in.serials) == 0 {
		r.Outcome, r.Detail = Pass, "no zones"
		return r
	}
	for _, row := range in.serials {
		if row.Stale {
			r.Outcome, r.Detail = Fail, fmt.Sprintf("%s: serial %d, %d behind %s", row.Zone, row.Serial, row.Lag, row.Primary)
			return r
		}
		if row.Reference == nil {
			r.Outcome, r.Detail = Inconclusive, fmt.Sprintf("%s: primary unknown: %s", row.Zone, row.Error)
			return r
		}
	}
	r.Outcome, r.Detail = Pass, fmt.Sprintf("%d zones current", len(in.serials))
	return r
}

// gateBGP: every session Established and every prefix the inventory
// lists announced; a node configured without BGP passes.
func gateBGP(in gateInput) Result {
	r := Result{Gate: "bgp"}
	if len(in.cfg.BGP.Peers) == 0 {
		r.Outcome, r.Detail = Pass, "no BGP configured"
		return r
	}
	if !in.state.Reached || len(in.state.Sessions) == 0 {
		r.Outcome, r.Detail = Inconclusive, "no BGP sessions reported"
		return r
	}
	for _, s := range in.state.Sessions {
		if !strings.EqualFold(s.State, "established") {
			r.Outcome, r.Detail = Fail, fmt.Sprintf("session %s is %s", s.Name, s.State)
			return r
		}
	}
	for _, p := range in.node.Prefixes {
		ann, known := in.state.Announcing(p)
		if !known {
			r.Outcome, r.Detail = Inconclusive, "prefix "+p+" not reported"
			return r
		}
		if !ann {
			r.Outcome, r.Detail = Fail, "prefix "+p+" not announced"
			return r
		}
	}
	r.Outcome, r.Detail = Pass, fmt.Sprintf("%d sessions established, %d prefixes announced", len(in.state.Sessions), len(in.node.Prefixes))
	return r
}

// verdict folds gate results: any fail fails, else any inconclusive is
// inconclusive, else pass.
func verdict(rs []Result) string {
	out := Pass
	for _, r := range rs {
		switch r.Outcome {
		case Fail:
			return Fail
		case Inconclusive:
			out = Inconclusive
		}
	}
	return out
}
