package diff

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Query is one question as it goes on the wire. The zero value of each
// knob is the plain case: UDP, class IN, RD clear, opcode QUERY, no EDNS.
type Query struct {
	Name    string // sent exactly as written, case included
	Type    uint16
	Class   uint16 // 0 means IN
	TCP     bool
	RD      bool
	Opcode  int
	EDNS    bool
	BufSize uint16
	Version uint8
	DO      bool
	NSID    bool
	Options []dns.EDNS0 // further EDNS options, sent as-is
	Raw     []byte      // when set, sent verbatim instead of the above (malformed queries)
}

// String describes the query the way one would type it into kdig.
func (q Query) String() string {
	var b strings.Builder
	if q.Raw != nil {
		fmt.Fprintf(&b, "raw %d octets %s", len(q.Raw), hex.EncodeToString(q.Raw))
	} else {
		class := q.Class
		if class == 0 {
			class = dns.ClassINET
		}
		fmt.Fprintf(&b, "%s %s %s", q.Name, dns.Class(class), dns.Type(q.Type))
		if q.Opcode != dns.OpcodeQuery {
			fmt.Fprintf(&b, " +opcode=%d", q.Opcode)
		}
		if q.RD {
			b.WriteString(" +rd")
		}
		if !q.EDNS {
			b.WriteString(" +noedns")
		} else {
			fmt.Fprintf(&b, " +bufsize=%d", q.BufSize)
			if q.Version != 0 {
				fmt.Fprintf(&b, " +ednsver=%d", q.Version)
			}
			if q.DO {
				b.WriteString(" +dnssec")
			}
			if q.NSID {
				b.WriteString(" +nsid")
			}
			for _, o := range q.Options {
				fmt.Fprintf(&b, " +ednsopt=%d", o.Option())
			}
		}
	}
	if q.TCP {
		b.WriteString(" +tcp")
	} else {
		b.WriteString(" +udp")
	}
	return b.String()
}

// wire returns the query's bytes and the message ID in them.
func (q Query) wire() ([]byte, uint16, error) {
	if q.Raw != nil {
		if len(q.Raw) < 2 {
			return q.Raw, 0, nil
		}
		return q.Raw, binary.BigEndian.Uint16(q.Raw), nil
	}
	m := new(dns.Msg)
	m.Id = dns.Id()
	m.Opcode = q.Opcode
	m.RecursionDesired = q.RD
	class := q.Class
	if class == 0 {
		class = dns.ClassINET
	}
	m.Question = []dns.Question{{Name: q.Name, Qtype: q.Type, Qclass: class}}
	if q.EDNS {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(q.BufSize)
		opt.SetVersion(q.Version)
		opt.SetDo(q.DO)
		if q.NSID {
			opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		}
		opt.Option = append(opt.Option, q.Options...)
		m.Extra = append(m.Extra, opt)
	}
	// Names go out as written: miekg/dns keeps case when packing, which
	// the 0x20 cases rely on.
	b, err := m.Pack()
	return b, m.Id, err
}

// Outcome is what one server did with one query.
type Outcome struct {
	Server string
	Msg    *dns.Msg // nil when there was no (parseable) response
	Size   int
	SentID uint16
	Err    string // "no response", or why the response could not be parsed
}

func exchange(addr string, q Query, timeout time.Duration) Outcome {
	wire, id, err := q.wire()
	if err != nil {
		return Outcome{Err: "cannot build query: " + err.Error()}
	}
	// No retries: on loopback a lost datagram is a dropped query, and
	// silence is one of the outcomes compared.
	var resp []byte
	if q.TCP {
		resp, err = exchangeTCP(addr, wire, timeout)
	} else {
		resp, err = exchangeUDP(addr, wire, timeout)
	}
	if err != nil {
		return Outcome{SentID: id, Err: "no response (" + err.Error() + ")"}
	}
	m := new(dns.Msg)
	if err := m.Unpack(resp); err != nil {
		return Outcome{SentID: id, Size: len(resp), Err: fmt.Sprintf("unparseable response (%v): %s", err, hex.EncodeToString(resp))}
	}
	return Outcome{Msg: m, Size: len(resp), SentID: id}
}

func exchangeUDP(addr string, wire []byte, timeout time.Duration) ([]byte, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(wire); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errors.New("timeout")
		}
		return nil, err
	}
	return buf[:n], nil
}

func exchangeTCP(addr string, wire []byte, timeout time.Duration) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	out := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(out, uint16(len(wire)))
	copy(out[2:], wire)
	if _, err := c.Write(out); err != nil {
		return nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errors.New("timeout")
		}
		if errors.Is(err, io.EOF) {
			return nil, errors.New("connection closed without a response")
		}
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// digString renders an outcome the way dig does, for people reading a
// failure.
func (o Outcome) digString() string {
	if o.Msg == nil {
		return ";; " + o.Err
	}
	return strings.TrimRight(o.Msg.String(), "\n") + fmt.Sprintf("\n;; MSG SIZE rcvd: %d", o.Size)
}

// brief is a one-line summary of an outcome, for the verbose log.
func (o Outcome) brief() string {
	if o.Msg == nil {
		return o.Err
	}
	v := makeView(o)
	return fmt.Sprintf("%s %s answer %d, authority %d, additional %d, edns %s",
		v.Rcode, v.Flags, len(o.Msg.Answer), len(o.Msg.Ns), len(v.Additional), v.EDNS)
}

// view is the comparable form of an outcome: every field is a string or a
// sorted list of strings, so two views agree when the fields are equal.
// Status, Rcode, Flags, Answer and Authority are the bar every case is held
// to; Header, Question and EDNS are compared only where the references
// agree on them (they differ on, for example, echoing the question in a
// NOTIMP response).
type view struct {
	Status     string // empty for a parsed response
	Rcode      string // extended RCODE included
	Flags      string // AA and TC
	Header     string // opcode, the other flags, the message ID
	Question   string // case preserved: 0x20 must survive
	EDNS       string // OPT presence, version, DO, NSID; not the UDP size or other options
	Answer     []string
	Authority  []string
	Additional []string // OPT excluded
}

// barFields are the fields a case is judged on; the rest are compared
// only where both references agree on them.
var barFields = map[string]bool{"status": true, "rcode": true, "flags": true, "answer": true, "authority": true}

func makeView(o Outcome) view {
	if o.Msg == nil {
		// Only "no response" or "unparseable" matters, not the error text
		// (timeout vs connection reset, or the bytes of the garbage).
		status := o.Err
		if i := strings.IndexByte(status, '('); i > 0 {
			status = strings.TrimSpace(status[:i])
		}
		return view{Status: status}
	}
	m := o.Msg
	var v view
	flagList := func(fs ...struct {
		on   bool
		name string
	}) string {
		var out []string
		for _, f := range fs {
			if f.on {
				out = append(out, f.name)
			}
		}
		return "[" + strings.Join(out, " ") + "]"
	}
	type flag = struct {
		on   bool
		name string
	}
	v.Flags = flagList(flag{m.Authoritative, "aa"}, flag{m.Truncated, "tc"})
	opt := m.IsEdns0()
	switch rc, ok := dns.RcodeToString[m.Rcode]; {
	case m.Rcode == dns.RcodeBadVers && opt != nil:
		// 16 is BADSIG in a TSIG RR but BADVERS in an OPT; miekg/dns
		// names it BADSIG.
		v.Rcode = "BADVERS"
	case ok:
		v.Rcode = rc
	default:
		v.Rcode = fmt.Sprintf("RCODE%d", m.Rcode)
	}
	opcode, ok := dns.OpcodeToString[m.Opcode]
	if !ok {
		opcode = fmt.Sprintf("OPCODE%d", m.Opcode)
	}
	v.Header = fmt.Sprintf("opcode %s, flags %s", opcode, flagList(flag{m.Response, "qr"}, flag{m.RecursionDesired, "rd"},
		flag{m.RecursionAvailable, "ra"}, flag{m.Zero, "z"}, flag{m.AuthenticatedData, "ad"}, flag{m.CheckingDisabled, "cd"}))
	if m.Id != o.SentID {
		v.Header += fmt.Sprintf(", id %d does not match the query's %d", m.Id, o.SentID)
	}
	var qs []string
	for _, q := range m.Question {
		qs = append(qs, fmt.Sprintf("%s %s %s", q.Name, dns.Class(q.Qclass), dns.Type(q.Qtype)))
	}
	v.Question = strings.Join(qs, "; ")
	v.EDNS = "none"
	if opt != nil {
		e := []string{fmt.Sprintf("version %d", opt.Version())}
		if opt.Do() {
			e = append(e, "do")
		}
		// NSID is the one option every server here is configured alike
		// for; others (NSD's extended errors, say) are not compared.
		for _, o := range opt.Option {
			if n, ok := o.(*dns.EDNS0_NSID); ok {
				b, _ := hex.DecodeString(n.Nsid)
				e = append(e, fmt.Sprintf("nsid %q", b))
			}
		}
		v.EDNS = strings.Join(e, ", ")
	}
	v.Answer = canonSection(m.Answer)
	v.Authority = canonSection(m.Ns)
	v.Additional = canonSection(m.Extra)
	return v
}

// positive reports a NOERROR response with answers, whose authority NS set
// servers may add or leave out as they like.
func (v view) positive() bool {
	return v.Status == "" && v.Rcode == "NOERROR" && len(v.Answer) > 0
}

func canonSection(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, canonRR(rr))
	}
	sort.Strings(out)
	return out
}

// canonRR is the RR's text with owner and RDATA domain names lowercased
// (RFC 4034 section 6.2's list, for the types the zones use) and TTL kept.
// Only names are lowercased: TXT strings and signatures are case-sensitive.
func canonRR(rr dns.RR) string {
	rr = dns.Copy(rr)
	lc := strings.ToLower
	rr.Header().Name = lc(rr.Header().Name)
	switch r := rr.(type) {
	case *dns.NS:
		r.Ns = lc(r.Ns)
	case *dns.CNAME:
		r.Target = lc(r.Target)
	case *dns.DNAME:
		r.Target = lc(r.Target)
	case *dns.PTR:
		r.Ptr = lc(r.Ptr)
	case *dns.MX:
		r.Mx = lc(r.Mx)
	case *dns.SRV:
		r.Target = lc(r.Target)
	case *dns.SOA:
		r.Ns, r.Mbox = lc(r.Ns), lc(r.Mbox)
	case *dns.NAPTR:
		r.Replacement = lc(r.Replacement)
	case *dns.RRSIG:
		r.SignerName = lc(r.SignerName)
	case *dns.NSEC:
		r.NextDomain = lc(r.NextDomain)
	}
	return strings.ReplaceAll(rr.String(), "\t", " ")
}

// fieldDiff is one way two views differ.
type fieldDiff struct {
	Field string
	Text  string
}

// compare lists how got differs from want in everything the bar covers:
// status, header, question, EDNS, answer and authority. The additional
// section is left to additionalDiff.
func compare(want, got view) []fieldDiff {
	var d []fieldDiff
	if want.Status != got.Status {
		d = append(d, fieldDiff{"status", fmt.Sprintf("want %q, got %q", orResponse(want.Status), orResponse(got.Status))})
		return d
	}
	if want.Status != "" {
		return nil
	}
	for _, f := range []struct{ name, w, g string }{
		{"rcode", want.Rcode, got.Rcode},
		{"flags", want.Flags, got.Flags},
		{"header", want.Header, got.Header},
		{"question", want.Question, got.Question},
		{"edns", want.EDNS, got.EDNS},
	} {
		if f.w != f.g {
			d = append(d, fieldDiff{f.name, fmt.Sprintf("want %q, got %q", f.w, f.g)})
		}
	}
	if s := setDiff(want.Answer, got.Answer); s != "" {
		d = append(d, fieldDiff{"answer", s})
	}
	wa, ga := want.Authority, got.Authority
	if want.positive() && got.positive() {
		wa, ga = dropNS(wa), dropNS(ga)
	}
	if s := setDiff(wa, ga); s != "" {
		d = append(d, fieldDiff{"authority", s})
	}
	return d
}

func orResponse(s string) string {
	if s == "" {
		return "response"
	}
	return s
}

// additionalDiff counts RRs in one additional section and not the other.
// Additional data is up to each server (RFC 2181 section 9, minimal
// responses), so it is reported, never failed.
func additionalDiff(want, got view) int {
	missing, extra := multisetDiff(want.Additional, got.Additional)
	return len(missing) + len(extra)
}

// dropNS removes NS records and the RRSIGs that cover them.
func dropNS(rrs []string) []string {
	var out []string
	for _, rr := range rrs {
		f := strings.Fields(rr)
		if len(f) >= 4 && f[3] == "NS" || len(f) >= 5 && f[3] == "RRSIG" && f[4] == "NS" {
			continue
		}
		out = append(out, rr)
	}
	return out
}

// multisetDiff returns the elements of want missing from got and the
// elements of got not in want; both inputs are sorted.
func multisetDiff(want, got []string) (missing, extra []string) {
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || (i < len(want) && want[i] < got[j]):
			missing = append(missing, want[i])
			i++
		case i == len(want) || got[j] < want[i]:
			extra = append(extra, got[j])
			j++
		default:
			i++
			j++
		}
	}
	return missing, extra
}

func setDiff(want, got []string) string {
	missing, extra := multisetDiff(want, got)
	var b strings.Builder
	for _, rr := range missing {
		fmt.Fprintf(&b, "\n      - %s", rr)
	}
	for _, rr := range extra {
		fmt.Fprintf(&b, "\n      + %s", rr)
	}
	return b.String()
}

func formatDiffs(d []fieldDiff) string {
	var b strings.Builder
	for _, f := range d {
		fmt.Fprintf(&b, "  %-9s %s\n", f.Field+":", f.Text)
	}
	return b.String()
}

func fieldNames(d []fieldDiff) string {
	var names []string
	for _, f := range d {
		names = append(names, f.Field)
	}
	return strings.Join(names, ",")
}
