package xfr

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/config"
	"github.com/shoestring-dns/shoestring/firmware/store"
)

// Limits bound what one incoming transfer may bring, so a primary that
// misbehaves (or a zone that grew past what the box can hold) is refused
// with a clear error instead of exhausting a 512 MB box.
type Limits struct {
	MaxRecords  int           // records in the response; 0: no limit
	MaxBytes    int64         // message bytes in the response; 0: no limit
	Timeout     time.Duration // the whole transfer; 0: config.DefaultTransferTimeout
	IdleTimeout time.Duration // between messages, and to connect; 0: config.DefaultTransferIdle
}

func (l Limits) timeout() time.Duration {
	if l.Timeout > 0 {
		return l.Timeout
	}
	return config.DefaultTransferTimeout
}

func (l Limits) idle() time.Duration {
	if l.IdleTimeout > 0 {
		return l.IdleTimeout
	}
	return config.DefaultTransferIdle
}

// LimitError is a transfer refused for exceeding a configured limit.
type LimitError struct{ What string }

func (e *LimitError) Error() string { return "transfer over the limit: " + e.What }

// RcodeError is a primary answering with an error rcode.
type RcodeError struct {
	Rcode int
	What  string
}

func (e *RcodeError) Error() string {
	return fmt.Sprintf("%s answered %s", e.What, dns.RcodeToString[e.Rcode])
}

// Client asks primaries for SOAs and zones.
type Client struct {
	Limits Limits
}

// Sink takes a zone's records as an AXFR brings them, so that a big zone
// is never held whole as dns.RR values (the node's is a store import).
type Sink interface {
	Add(rr dns.RR)
}

// Result is one completed transfer.
type Result struct {
	Kind     Kind
	SOA      *dns.SOA      // the primary's SOA
	Records  []dns.RR      // AXFR without a Sink: the whole zone, SOA first
	Count    int           // AXFR: the zone's records (held or sunk)
	Deltas   []store.Delta // IXFR: the changes, oldest first
	Messages int
	Bytes    int64
	Took     time.Duration
}

// Changes is the number of records the result carries.
func (r *Result) Changes() int {
	n := len(r.Records)
	for _, d := range r.Deltas {
		n += len(d.Removed) + len(d.Added)
	}
	return n
}

// request packs a query for origin, with our SOA in the authority section
// for IXFR, and signs it when r has a key. It returns the message and the
// request MAC (nil unsigned).
func request(r Remote, origin string, qtype uint16, have *dns.SOA, opcode int) ([]byte, uint16, []byte, error) {
	m := new(dns.Msg)
	m.SetQuestion(origin, qtype)
	m.Opcode = opcode
	m.RecursionDesired = false
	if have != nil {
		m.Ns = []dns.RR{have}
	}
	if opcode == dns.OpcodeNotify {
		m.Authoritative = true
		if have != nil {
			m.Ns, m.Answer = nil, []dns.RR{have}
		}
	}
	b, err := m.Pack()
	if err != nil {
		return nil, 0, nil, err
	}
	var mac []byte
	if r.Key != nil {
		b, mac = r.Key.SignRequest(b, time.Now())
	}
	return b, m.Id, mac, nil
}

// checkHeader checks a response's header against the request.
func checkHeader(msg []byte, id uint16, origin string, qtype uint16, what string) (*dns.Msg, error) {
	if len(msg) < 12 {
		return nil, errShort
	}
	if binary.BigEndian.Uint16(msg) != id {
		return nil, fmt.Errorf("%s: response ID does not match the request", what)
	}
	m := new(dns.Msg)
	if err := m.Unpack(msg); err != nil {
		return nil, fmt.Errorf("%s: malformed response: %w", what, err)
	}
	if !m.Response {
		return nil, fmt.Errorf("%s: the message is not a response", what)
	}
	if m.Rcode != dns.RcodeSuccess {
		return nil, &RcodeError{Rcode: m.Rcode, What: what}
	}
	if len(m.Question) > 0 {
		q := m.Question[0]
		if len(m.Question) > 1 || !strings.EqualFold(q.Name, origin) || q.Qtype != qtype || q.Qclass != dns.ClassINET {
			return nil, fmt.Errorf("%s: response is for another question (%s)", what, q.String())
		}
	}
	return m, nil
}

// SOA asks r for the SOA of origin: over UDP, again over TCP when the
// answer is truncated or UDP gets nothing.
func (c *Client) SOA(ctx context.Context, r Remote, origin string) (*dns.SOA, error) {
	soa, err := c.soa(ctx, r, origin, "udp")
	if errors.Is(err, errTruncated) || isTimeout(err) {
		soa, err = c.soa(ctx, r, origin, "tcp")
	}
	return soa, err
}

var errTruncated = errors.New("truncated")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Client) soa(ctx context.Context, r Remote, origin, network string) (*dns.SOA, error) {
	what := "SOA query to " + r.Target()
	req, id, mac, err := request(r, origin, dns.TypeSOA, nil, dns.OpcodeQuery)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := r.dial(ctx, network)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	var resp []byte
	if network == "udp" {
		// Resend once: one lost datagram should not cost a retry interval.
		for attempt := 0; ; attempt++ {
			conn.SetReadDeadline(time.Now().Add(time.Second))
			if _, err = conn.Write(req); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			resp, err = readUDP(conn, id)
			if err == nil || !isTimeout(err) || attempt == 1 {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	} else {
		if err := writeTCP(conn, req); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if resp, err = readTCP(bufio.NewReader(conn)); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	if r.Key != nil {
		v := newVerifier(r.Key, mac)
		if err := v.check(resp); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	m, err := checkHeader(resp, id, origin, dns.TypeSOA, what)
	if err != nil {
		return nil, err
	}
	if m.Truncated {
		return nil, errTruncated
	}
	if !m.Authoritative {
		return nil, fmt.Errorf("%s: the answer is not authoritative; is %s a primary for %s?", what, r.Target(), origin)
	}
	for _, rr := range m.Answer {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, origin) {
			return soa, nil
		}
	}
	return nil, fmt.Errorf("%s: no SOA for %s in the answer", what, origin)
}

// readUDP reads datagrams until one with the right ID arrives.
func readUDP(conn net.Conn, id uint16) ([]byte, error) {
	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		if n >= 12 && binary.BigEndian.Uint16(buf) == id {
			return buf[:n:n], nil
		}
	}
}

func writeTCP(w io.Writer, msg []byte) error {
	b := make([]byte, 2, 2+len(msg))
	binary.BigEndian.PutUint16(b, uint16(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

// readTCP reads one length-prefixed message into a buffer of its own (its
// records are decoded from it, and it is garbage after that).
func readTCP(r *bufio.Reader) ([]byte, error) {
	var lb [2]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(lb[:]))
	if n < 12 {
		return nil, errShort
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return msg, nil
}

// AXFR transfers the whole zone from r.
func (c *Client) AXFR(ctx context.Context, r Remote, origin string) (*Result, error) {
	return c.transfer(ctx, r, origin, dns.TypeAXFR, nil, nil)
}

// AXFRInto is AXFR with the zone's records handed to sink as they
// arrive, not kept in the Result. A transfer that fails leaves in sink
// what arrived before; the caller throws it away.
func (c *Client) AXFRInto(ctx context.Context, r Remote, origin string, sink Sink) (*Result, error) {
	return c.transfer(ctx, r, origin, dns.TypeAXFR, nil, sink)
}

// IXFRInto is IXFR where, if the primary answers with the whole zone,
// its records go to sink as for AXFRInto.
func (c *Client) IXFRInto(ctx context.Context, r Remote, origin string, have *dns.SOA, sink Sink) (*Result, error) {
	return c.transfer(ctx, r, origin, dns.TypeIXFR, have, sink)
}

// IXFR asks r for the changes since have (the SOA we hold). The result
// may be an AXFR (the primary's choice), or up to date.
func (c *Client) IXFR(ctx context.Context, r Remote, origin string, have *dns.SOA) (*Result, error) {
	return c.transfer(ctx, r, origin, dns.TypeIXFR, have, nil)
}

func (c *Client) transfer(ctx context.Context, r Remote, origin string, qtype uint16, have *dns.SOA, sink Sink) (*Result, error) {
	start := time.Now()
	what := dns.TypeToString[qtype] + " from " + r.Target()
	req, id, mac, err := request(r, origin, qtype, have, dns.OpcodeQuery)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Limits.timeout())
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, c.Limits.idle())
	conn, err := r.dial(dctx, "tcp")
	dcancel()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	deadline, _ := ctx.Deadline()
	setDeadline := func() {
		d := time.Now().Add(c.Limits.idle())
		if d.After(deadline) {
			d = deadline
		}
		conn.SetDeadline(d)
	}
	setDeadline()
	if err := writeTCP(conn, req); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}

	var haveSerial uint32
	if have != nil {
		haveSerial = have.Serial
	}
	s := newStream(dns.CanonicalName(origin), qtype, haveSerial)
	s.sink = sink
	var v *verifier
	if r.Key != nil {
		v = newVerifier(r.Key, mac)
	}
	res := &Result{}
	records := 0
	lastOwner := ""
	br := bufio.NewReaderSize(conn, 64<<10)
	for !s.done {
		setDeadline()
		msg, err := readTCP(br)
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%v)", ctx.Err(), err)
			}
			return nil, fmt.Errorf("%s: cut after %d messages, %d records: %w", what, res.Messages, records, err)
		}
		res.Messages++
		res.Bytes += int64(len(msg)) + 2
		if c.Limits.MaxBytes > 0 && res.Bytes > c.Limits.MaxBytes {
			return nil, fmt.Errorf("%s: %w", what, &LimitError{fmt.Sprintf("more than %d bytes (secondary.limits.max_bytes)", c.Limits.MaxBytes)})
		}
		if v != nil {
			if err := v.check(msg); err != nil {
				return nil, fmt.Errorf("%s: message %d: %w", what, res.Messages, err)
			}
		}
		m, err := checkHeader(msg, id, origin, qtype, what)
		if err != nil {
			return nil, err
		}
		if m.Truncated {
			return nil, fmt.Errorf("%s: message %d is truncated", what, res.Messages)
		}
		for _, rr := range m.Answer {
			// Records of one owner come together; sharing one copy of
			// the name saves a string per record (tens of MB at 1M).
			if h := rr.Header(); h.Name == lastOwner {
				h.Name = lastOwner
			} else {
				lastOwner = h.Name
			}
			records++
			if c.Limits.MaxRecords > 0 && records > c.Limits.MaxRecords+1 { // +1: the closing SOA
				return nil, fmt.Errorf("%s: %w", what, &LimitError{fmt.Sprintf("more than %d records (secondary.limits.max_records)", c.Limits.MaxRecords)})
			}
			if err := checkRecord(rr, origin); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			if err := s.add(rr); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
		}
		if len(m.Answer) == 0 {
			return nil, fmt.Errorf("%s: message %d has no records", what, res.Messages)
		}
		s.endOfMessage()
	}
	if v != nil {
		if err := v.done(); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	res.Kind, res.SOA, res.Records, res.Deltas, res.Count = s.kind, s.soa, s.records, s.deltas, s.count
	res.Took = time.Since(start)
	return res, nil
}

// checkRecord refuses what can never be zone data, as early as possible:
// another class, meta types, names outside the zone.
func checkRecord(rr dns.RR, origin string) error {
	h := rr.Header()
	if h.Class != dns.ClassINET {
		return fmt.Errorf("%s %s: class %s (only IN)", h.Name, dns.TypeToString[h.Rrtype], dns.ClassToString[h.Class])
	}
	if h.Rrtype == dns.TypeOPT || h.Rrtype == dns.TypeTSIG || (h.Rrtype >= 128 && h.Rrtype <= 255) {
		return fmt.Errorf("%s: type %s is not zone data", h.Name, dns.TypeToString[h.Rrtype])
	}
	if !dns.IsSubDomain(origin, h.Name) {
		return fmt.Errorf("%s %s is outside the zone %s", h.Name, dns.TypeToString[h.Rrtype], origin)
	}
	return nil
}
