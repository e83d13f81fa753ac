package xfr

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/store"
	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// Source is where outbound transfers read zones: the store, through the
// node.
type Source interface {
	// SOA returns the SOA of the version being served, or nil when the
	// zone is not served (unknown, or expired: an expired secondary must
	// not hand out stale data either).
	SOA(origin string) *dns.SOA
	// Zone returns the zone's records. They become the caller's: packing
	// a record sets its RDLENGTH, so two transfers must not share them.
	Zone(origin string) (*zone.Zone, error)
	// Journal returns the deltas from serial to the current version, or
	// store.ErrJournalGap; the records are the caller's, as with Zone.
	Journal(origin string, from uint32) ([]store.Delta, error)
}

// Server answers AXFR and IXFR requests from downstream secondaries.
type Server struct {
	Source Source
	Keys   Keyring
	ACL    ACL
	Log    *slog.Logger
	// MaxConcurrent bounds transfers served at once: each holds a whole
	// zone in memory while it is sent. 0 means 4.
	MaxConcurrent int

	slotsOnce sync.Once
	slots     chan struct{}
	AXFRs     atomic.Uint64 // counts of transfers served, for status
	IXFRs     atomic.Uint64
	Refusals  atomic.Uint64
}

// softLimit is where a response message is closed and the next begun;
// 16 KiB keeps compression pointers (14 bits) usable throughout and
// matches what BIND sends. maxPayload leaves room for a TSIG record.
const (
	softLimit  = 16 << 10
	maxPayload = 65535 - 512
)

func (s *Server) slot(ctx context.Context) bool {
	s.slotsOnce.Do(func() {
		n := s.MaxConcurrent
		if n <= 0 {
			n = 4
		}
		s.slots = make(chan struct{}, n)
	})
	select {
	case s.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// Serve answers one AXFR or IXFR request received over TCP, writing each
// response message to w.
func (s *Server) Serve(raw []byte, from netip.AddrPort, w io.Writer) error {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	req := new(dns.Msg)
	if err := req.Unpack(raw); err != nil || len(req.Question) != 1 {
		return errors.New("malformed transfer request")
	}
	q := req.Question[0]
	origin := dns.CanonicalName(q.Name)
	kind := dns.TypeToString[q.Qtype]
	now := time.Now()

	var key *Key
	var mac []byte
	if t, _ := findTSIG(raw); t != nil {
		k, t, err := verifyRequest(raw, s.Keys, now)
		var te *TSIGError
		if errors.As(err, &te) {
			s.Refusals.Add(1)
			log.Warn("transfer refused: TSIG", "zone", origin, "type", kind, "from", from, "err", err)
			reply := errorReply(req, dns.RcodeNotAuth)
			_, werr := w.Write(tsigErrorReply(reply, k, t, te, now))
			return werr
		}
		if err != nil {
			return fmt.Errorf("transfer request: %w", err)
		}
		key, mac = k, t.mac
	}
	e := &emitter{w: w, id: req.Id, rd: req.RecursionDesired, question: q}
	if key != nil {
		e.signer = newResponseSigner(key, mac)
	}
	if !s.ACL.Allows(from.Addr(), key) {
		s.Refusals.Add(1)
		signed := "unsigned"
		if key != nil {
			signed = "signed with " + key.Name
		}
		log.Warn("transfer refused: not allowed by secondary.outbound.allow", "zone", origin, "type", kind, "from", from, "request", signed)
		return e.rcode(dns.RcodeRefused)
	}
	soa := s.Source.SOA(origin)
	if soa == nil || q.Qclass != dns.ClassINET {
		s.Refusals.Add(1)
		log.Info("transfer refused: zone not served here", "zone", origin, "type", kind, "from", from)
		return e.rcode(dns.RcodeNotAuth)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	ok := s.slot(ctx)
	cancel()
	if !ok {
		log.Warn("transfer refused: too many transfers at once", "zone", origin, "from", from)
		return e.rcode(dns.RcodeServerFailure)
	}
	defer func() { <-s.slots }()

	var err error
	var what string
	switch q.Qtype {
	case dns.TypeIXFR:
		what, err = s.ixfr(e, req, origin, soa)
	case dns.TypeAXFR:
		what, err = s.axfr(e, origin)
	default:
		return e.rcode(dns.RcodeNotImplemented)
	}
	if err != nil {
		log.Warn("transfer failed", "zone", origin, "type", kind, "to", from, "err", err)
		return err
	}
	log.Info("transfer served", "zone", origin, "type", kind, "to", from, "sent", what,
		"messages", e.msgs, "bytes", e.bytes, "took", time.Since(now).Round(time.Millisecond))
	return nil
}

// axfr sends the whole zone: SOA, everything else, SOA.
func (s *Server) axfr(e *emitter, origin string) (string, error) {
	z, err := s.Source.Zone(origin)
	if err != nil {
		e.rcode(dns.RcodeServerFailure)
		return "", err
	}
	soa := z.SOA()
	if soa == nil {
		e.rcode(dns.RcodeServerFailure)
		return "", fmt.Errorf("zone %s has no SOA", origin)
	}
	s.AXFRs.Add(1)
	if err := e.add(soa); err != nil {
		return "", err
	}
	for _, rr := range z.Records {
		if rr == soa {
			continue
		}
		if err := e.add(rr); err != nil {
			return "", err
		}
	}
	if err := e.add(soa); err != nil {
		return "", err
	}
	return fmt.Sprintf("serial %d, %d records", soa.Serial, len(z.Records)), e.flush()
}

// ixfr sends the changes since the client's serial from the journal, the
// lone SOA when the client is current, or the whole zone when the journal
// does not reach back far enough (RFC 1995 §4).
func (s *Server) ixfr(e *emitter, req *dns.Msg, origin string, soa *dns.SOA) (string, error) {
	var have *dns.SOA
	for _, rr := range req.Ns {
		if x, ok := rr.(*dns.SOA); ok && strings.EqualFold(x.Hdr.Name, origin) {
			have = x
		}
	}
	if have == nil {
		return "", e.rcode(dns.RcodeFormatError)
	}
	if !SerialNewer(soa.Serial, have.Serial) {
		if err := e.add(soa); err != nil {
			return "", err
		}
		return fmt.Sprintf("SOA only, client at %d, we at %d", have.Serial, soa.Serial), e.flush()
	}
	deltas, err := s.Source.Journal(origin, have.Serial)
	if errors.Is(err, store.ErrJournalGap) || (err == nil && len(deltas) == 0) {
		what, err := s.axfr(e, origin)
		return "AXFR-style (journal does not reach " + fmt.Sprint(have.Serial) + "): " + what, err
	}
	if err != nil {
		e.rcode(dns.RcodeServerFailure)
		return "", err
	}
	last := deltas[len(deltas)-1]
	newSOA, ok := last.Added[0].(*dns.SOA)
	if !ok {
		e.rcode(dns.RcodeServerFailure)
		return "", fmt.Errorf("journal of %s: delta without its SOA", origin)
	}
	s.IXFRs.Add(1)
	n := 0
	if err := e.add(newSOA); err != nil {
		return "", err
	}
	for _, d := range deltas {
		for _, list := range [][]dns.RR{d.Removed, d.Added} {
			for _, rr := range list {
				if err := e.add(rr); err != nil {
					return "", err
				}
				n++
			}
		}
	}
	if err := e.add(newSOA); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d changes %d→%d, %d records", len(deltas), have.Serial, newSOA.Serial, n), e.flush()
}

func errorReply(req *dns.Msg, rcode int) []byte {
	r := new(dns.Msg)
	r.SetRcode(req, rcode)
	r.Authoritative = rcode != dns.RcodeNotAuth && rcode != dns.RcodeRefused
	b, _ := r.Pack()
	return b
}

// emitter packs records into response messages, each signed when the
// request was, and writes them out one by one so that only one message is
// ever held.
type emitter struct {
	w        io.Writer
	id       uint16
	rd       bool
	question dns.Question
	signer   *responseSigner

	buf   []byte
	off   int
	count int
	comp  map[string]int
	msgs  int
	bytes int64
}

func (e *emitter) begin() error {
	if e.buf == nil {
		e.buf = make([]byte, 65535)
		e.comp = make(map[string]int)
	}
	clear(e.comp)
	h := e.buf[:12]
	clear(h)
	binary.BigEndian.PutUint16(h, e.id)
	flags := uint16(1<<15 | 1<<10) // QR, AA
	if e.rd {
		flags |= 1 << 8
	}
	binary.BigEndian.PutUint16(h[2:], flags)
	e.off, e.count = 12, 0
	if e.msgs == 0 {
		// The question goes in the first message only (RFC 5936 §2.2).
		off, err := dns.PackDomainName(e.question.Name, e.buf, 12, e.comp, true)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint16(e.buf[off:], e.question.Qtype)
		binary.BigEndian.PutUint16(e.buf[off+2:], e.question.Qclass)
		e.off = off + 4
		binary.BigEndian.PutUint16(h[4:], 1)
	}
	return nil
}

func (e *emitter) add(rr dns.RR) error {
	if e.buf == nil || e.off == 0 {
		if err := e.begin(); err != nil {
			return err
		}
	}
	for {
		off, err := dns.PackRR(rr, e.buf[:maxPayload], e.off, e.comp, true)
		if err == nil && (off <= softLimit || e.count == 0) {
			e.off = off
			e.count++
			return nil
		}
		if e.count == 0 {
			return fmt.Errorf("record %s does not fit in a message: %v", rr.Header().Name, err)
		}
		if err := e.flush(); err != nil {
			return err
		}
		if err := e.begin(); err != nil {
			return err
		}
	}
}

// flush writes the message being built, if it holds anything.
func (e *emitter) flush() error {
	if e.off == 0 || (e.count == 0 && e.msgs > 0) {
		return nil
	}
	binary.BigEndian.PutUint16(e.buf[6:], uint16(e.count))
	msg := e.buf[:e.off]
	if e.signer != nil {
		msg = e.signer.sign(msg)
	}
	e.off = 0
	e.msgs++
	e.bytes += int64(len(msg))
	_, err := e.w.Write(msg)
	return err
}

// rcode sends a lone error message (signed when the request was).
func (e *emitter) rcode(rcode int) error {
	r := new(dns.Msg)
	r.Id = e.id
	r.Response = true
	r.RecursionDesired = e.rd
	r.Rcode = rcode
	r.Question = []dns.Question{e.question}
	b, err := r.Pack()
	if err != nil {
		return err
	}
	if e.signer != nil {
		b = e.signer.sign(b)
	}
	_, err = e.w.Write(b)
	return err
}
