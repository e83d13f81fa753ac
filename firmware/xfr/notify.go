package xfr

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// SendNotify tells r that origin changed (RFC 1996), over UDP, resending
// (§3.6) until r answers or tries run out: a downstream that misses a
// NOTIFY still catches up at its next refresh, so this gives up quietly
// after about 15 s.
func SendNotify(ctx context.Context, r Remote, origin string, soa *dns.SOA) error {
	req, id, mac, err := request(r, origin, dns.TypeSOA, soa, dns.OpcodeNotify)
	if err != nil {
		return err
	}
	var last error
	wait := 500 * time.Millisecond
	for try := 0; try < 5; try++ {
		last = notifyOnce(ctx, r, req, id, mac, origin, wait)
		if last == nil || ctx.Err() != nil {
			return last
		}
		var rc *RcodeError
		if errors.As(last, &rc) {
			return last // answered, with an error: resending will not help
		}
		wait *= 2
	}
	return last
}

func notifyOnce(ctx context.Context, r Remote, req []byte, id uint16, mac []byte, origin string, wait time.Duration) error {
	what := "NOTIFY to " + r.Target()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	conn, err := r.dial(ctx, "udp")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(wait))
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	resp, err := readUDP(conn, id)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if r.Key != nil {
		if err := newVerifier(r.Key, mac).check(resp); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	m := new(dns.Msg)
	if err := m.Unpack(resp); err != nil {
		return fmt.Errorf("%s: malformed answer: %w", what, err)
	}
	if !m.Response || m.Opcode != dns.OpcodeNotify {
		return fmt.Errorf("%s: the answer is not a NOTIFY response", what)
	}
	if m.Rcode != dns.RcodeSuccess {
		return &RcodeError{Rcode: m.Rcode, What: what}
	}
	return nil
}

// Notification is an incoming NOTIFY, parsed.
type Notification struct {
	Origin string // canonical
	Serial uint32 // the serial the primary says it has, when HasSerial
	// HasSerial: the NOTIFY carried the new SOA (optional, RFC 1996 §3.7).
	HasSerial bool
	From      netip.AddrPort
	// Signed: the message carries a TSIG record, checked by Verify.
	Signed bool

	raw  []byte
	msg  *dns.Msg
	tsig *tsigRR
	key  *Key // the key it verified with
	terr *TSIGError
}

// ParseNotify reads a NOTIFY request. It fails on anything that is not
// one, and the caller then sends no reply (a FORMERR to a forged source
// would only be reflected traffic).
func ParseNotify(raw []byte, from netip.AddrPort) (*Notification, error) {
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		return nil, err
	}
	if m.Response || m.Opcode != dns.OpcodeNotify || len(m.Question) != 1 {
		return nil, errors.New("not a NOTIFY request")
	}
	q := m.Question[0]
	if q.Qclass != dns.ClassINET || q.Qtype != dns.TypeSOA {
		return nil, fmt.Errorf("NOTIFY for %s %s: only IN SOA is handled", dns.ClassToString[q.Qclass], dns.TypeToString[q.Qtype])
	}
	n := &Notification{Origin: dns.CanonicalName(q.Name), From: from, raw: raw, msg: m}
	for _, rr := range m.Answer {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, q.Name) {
			n.Serial, n.HasSerial = soa.Serial, true
		}
	}
	t, err := findTSIG(raw)
	if err != nil {
		return nil, err
	}
	n.tsig, n.Signed = t, t != nil
	return n, nil
}

// Verify checks the NOTIFY's signature against key. With key nil an
// unsigned NOTIFY passes; with a key it must be signed with it.
func (n *Notification) Verify(key *Key) error {
	if key == nil {
		return nil
	}
	if n.tsig == nil {
		return &TSIGError{tsigBadKey, "NOTIFY is not signed; key " + key.Name + " is required"}
	}
	k, _, err := verifyRequest(n.raw, Keyring{key.Name: key}, time.Now())
	if err != nil {
		var te *TSIGError
		if errors.As(err, &te) {
			n.terr, n.key = te, k
		}
		return err
	}
	n.key = k
	return nil
}

// Reply packs the answer to the NOTIFY with rcode (RFC 1996 §4.7: the
// question echoed, AA set), signed when the request verified. After a
// failed Verify it is the NOTAUTH reply with the TSIG error instead.
func (n *Notification) Reply(rcode int) []byte {
	r := new(dns.Msg)
	r.SetReply(n.msg)
	r.Authoritative = true
	if n.terr != nil {
		r.Rcode = dns.RcodeNotAuth
	} else {
		r.Rcode = rcode
	}
	b, err := r.Pack()
	if err != nil {
		return nil
	}
	switch {
	case n.terr != nil:
		return tsigErrorReply(b, n.key, n.tsig, n.terr, time.Now())
	case n.key != nil:
		out, _ := n.key.sign(b, n.tsig.mac, false, time.Now(), 0, nil)
		return out
	}
	return b
}
