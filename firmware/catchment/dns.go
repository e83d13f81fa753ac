package catchment

import (
	"encoding/base32"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// DNS probes: a query for QNAME-of(id, sender) A, sent from the anycast
// address and the measurement's UDP port to port 53 of the target. The
// name is the base32 of "id NUL sender" in labels under dnsSuffix, so
// whichever node the response reaches reads who sent it; the message id
// is the hash of the measurement id.

// dnsSuffix ends every probe's query name (.invalid: it never resolves
// anywhere, and an authoritative server answers it REFUSED or NXDOMAIN
// with the question copied, which is all a probe needs).
const dnsSuffix = "catchment.shoestring.invalid."

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// maxDNSPayload keeps the query name under 255 octets.
const maxDNSPayload = 120

// DNSName is the query name of a probe of measurement id from sender;
// ok is false when the two are too long to fit in a name.
func DNSName(id, sender string) (string, bool) {
	if len(id)+1+len(sender) > maxDNSPayload {
		return "", false
	}
	enc := b32.EncodeToString([]byte(id + "\x00" + sender))
	var b strings.Builder
	for len(enc) > 0 {
		n := min(len(enc), 63)
		b.WriteString(enc[:n])
		b.WriteByte('.')
		enc = enc[n:]
	}
	b.WriteString(dnsSuffix)
	return b.String(), true
}

// DNSProbe builds the query of a DNS probe.
func DNSProbe(id, sender string) ([]byte, bool) {
	name, ok := DNSName(id, sender)
	if !ok {
		return nil, false
	}
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	q.Id = hash16(id)
	q.RecursionDesired = false
	b, err := q.Pack()
	return b, err == nil
}

// ParseDNSReply reads a response to a DNS probe: its measurement id and
// sender; ok is false for anything else.
func ParseDNSReply(b []byte) (id, sender string, ok bool) {
	var r dns.Msg
	if r.Unpack(b) != nil || !r.Response || len(r.Question) != 1 {
		return "", "", false
	}
	name := strings.ToLower(r.Question[0].Name)
	rest, found := strings.CutSuffix(name, "."+dnsSuffix)
	if !found {
		return "", "", false
	}
	raw, err := b32.DecodeString(strings.ReplaceAll(rest, ".", ""))
	if err != nil {
		return "", "", false
	}
	id, sender, found = strings.Cut(string(raw), "\x00")
	if !found || id == "" || sender == "" || hash16(id) != r.Id {
		return "", "", false
	}
	return id, sender, true
}

// receiveDNS records responses to this measurement's DNS probes until
// its socket closes.
func (m *measurement) receiveDNS(c *net.UDPConn) {
	var via netip.Addr
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok {
		via = la.AddrPort().Addr().Unmap()
	}
	buf := make([]byte, 4096)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if from.Port() != 53 {
			continue
		}
		id, sender, ok := ParseDNSReply(buf[:n])
		if !ok || id != m.id {
			continue
		}
		m.record(from.Addr().Unmap(), sender, via, ProbeDNS)
	}
}
