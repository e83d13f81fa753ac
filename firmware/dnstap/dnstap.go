// Package dnstap copies the node's DNS queries and responses to a dnstap
// collector (Frame Streams over TCP, normally across the tailnet) without
// ever slowing an answer: the DNS server hands each exchange to Tap, which
// copies it into a preallocated slot and returns; a separate goroutine
// encodes and sends. When the collector is slow or unreachable the slots
// run out and copies are dropped and counted, never queued without bound.
package dnstap

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	dt "github.com/dnstap/golang-dnstap"
	"google.golang.org/protobuf/proto"
)

// DefaultQueue is the number of exchanges held for the sender.
const DefaultQueue = 512

// slotSize bounds one exchange's query and response together: a UDP
// answer fits (the server sends at most max_udp_size); a larger TCP
// answer is dropped and counted rather than allocating on the answer path.
const slotSize = 4608

// Options configure a Tap.
type Options struct {
	// Target is the collector's host:port.
	Target string
	// Dial connects to the collector; the tailnet's dialer on a real box.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Identity and Version go into every message (dnstap's identity and
	// version fields): the node's name and the firmware version.
	Identity, Version string
	// Queue is how many exchanges may wait for the sender.
	Queue int
	// Retry is the wait between connection attempts.
	Retry time.Duration
	Log   *slog.Logger
}

// Tap is a running dnstap output; it implements dnsserver.Tap.
type Tap struct {
	o     Options
	free  chan *slot
	queue chan *slot

	sent      atomic.Uint64
	dropped   atomic.Uint64
	tooLarge  atomic.Uint64
	connected atomic.Bool
	lastErr   atomic.Pointer[string]
}

// slot is one exchange, copied out of the server's buffers.
type slot struct {
	buf       [slotSize]byte
	qlen      int
	rlen      int
	client    netip.AddrPort
	tcp       bool
	received  time.Time
	responded time.Time
}

// New allocates the slots; Run sends.
func New(o Options) *Tap {
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Retry <= 0 {
		o.Retry = 5 * time.Second
	}
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = d.DialContext
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	t := &Tap{o: o, free: make(chan *slot, o.Queue), queue: make(chan *slot, o.Queue)}
	for i := 0; i < o.Queue; i++ {
		t.free <- new(slot)
	}
	return t
}

// Tap copies one exchange for the sender, or drops it when no slot is
// free. It never blocks: both channel operations have a default case, and
// a slot taken from free always fits back into it.
func (t *Tap) Tap(query, response []byte, client netip.AddrPort, tcp bool, received time.Time) {
	if len(query)+len(response) > slotSize {
		t.tooLarge.Add(1)
		return
	}
	var s *slot
	select {
	case s = <-t.free:
	default:
		t.dropped.Add(1)
		return
	}
	s.qlen = copy(s.buf[:], query)
	s.rlen = copy(s.buf[s.qlen:], response)
	s.client, s.tcp, s.received, s.responded = client, tcp, received, time.Now()
	select {
	case t.queue <- s:
	default:
		t.dropped.Add(1)
		t.free <- s
	}
}

// Stats are the tap's counters.
type Stats struct {
	Target    string `json:"target"`
	Connected bool   `json:"connected"`
	Sent      uint64 `json:"sent"`
	// Dropped counts exchanges not sent because the collector was slow or
	// unreachable; TooLarge those that did not fit a slot.
	Dropped  uint64 `json:"dropped"`
	TooLarge uint64 `json:"too_large"`
	Error    string `json:"error,omitempty"`
}

// Stats returns the counters.
func (t *Tap) Stats() Stats {
	st := Stats{Target: t.o.Target, Connected: t.connected.Load(), Sent: t.sent.Load(), Dropped: t.dropped.Load(), TooLarge: t.tooLarge.Load()}
	if e := t.lastErr.Load(); e != nil {
		st.Error = *e
	}
	return st
}

// Run connects to the collector and sends until ctx ends, reconnecting
// after failures. While it is not connected, what arrives is dropped and
// counted, so the slots stay free for when it is.
func (t *Tap) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := t.session(ctx)
		t.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		msg := err.Error()
		t.lastErr.Store(&msg)
		t.o.Log.Warn("dnstap: collector connection", "target", t.o.Target, "err", err)
		t.discardFor(ctx, t.o.Retry)
	}
}

// discardFor drops what arrives for d (no collector to send it to).
func (t *Tap) discardFor(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		case s := <-t.queue:
			t.dropped.Add(1)
			t.free <- s
		}
	}
}

// session is one connection to the collector: Frame Streams, bidirectional
// (the handshake collectors such as the dnstap tool and Vector expect).
func (t *Tap) session(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := t.o.Dial(dctx, "tcp", t.o.Target)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	w, err := dt.NewWriter(conn, &dt.WriterOptions{Bidirectional: true, Timeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("frame streams handshake: %w", err)
	}
	defer w.Close()
	flusher, _ := w.(interface{ Flush() error })
	t.connected.Store(true)
	t.lastErr.Store(nil)
	t.o.Log.Info("dnstap: sending", "target", t.o.Target)
	for {
		var s *slot
		select {
		case <-ctx.Done():
			return nil
		case s = <-t.queue:
		}
		for _, m := range t.messages(s) {
			b, err := proto.Marshal(m)
			if err != nil {
				t.free <- s
				return err
			}
			if _, err := w.WriteFrame(b); err != nil {
				t.dropped.Add(1)
				t.free <- s
				return err
			}
		}
		t.free <- s
		t.sent.Add(1)
		// Flush when nothing else is waiting: a busy node sends full
		// buffers, a quiet one sends each exchange at once.
		if len(t.queue) == 0 && flusher != nil {
			if err := flusher.Flush(); err != nil {
				return err
			}
		}
	}
}

// messages turns one exchange into dnstap's AUTH_QUERY and AUTH_RESPONSE.
func (t *Tap) messages(s *slot) []*dt.Dnstap {
	fam, proto_ := dt.SocketFamily_INET, dt.SocketProtocol_UDP
	addr := s.client.Addr()
	if addr.Is6() {
		fam = dt.SocketFamily_INET6
	}
	if s.tcp {
		proto_ = dt.SocketProtocol_TCP
	}
	port := uint32(s.client.Port())
	qsec, qnsec := uint64(s.received.Unix()), uint32(s.received.Nanosecond())
	rsec, rnsec := uint64(s.responded.Unix()), uint32(s.responded.Nanosecond())
	query := append([]byte(nil), s.buf[:s.qlen]...)
	resp := append([]byte(nil), s.buf[s.qlen:s.qlen+s.rlen]...)
	mk := func(typ dt.Message_Type) *dt.Dnstap {
		return &dt.Dnstap{
			Identity: []byte(t.o.Identity),
			Version:  []byte(t.o.Version),
			Type:     dt.Dnstap_MESSAGE.Enum(),
			Message: &dt.Message{
				Type:           typ.Enum(),
				SocketFamily:   fam.Enum(),
				SocketProtocol: proto_.Enum(),
				QueryAddress:   addr.AsSlice(),
				QueryPort:      &port,
				QueryTimeSec:   &qsec,
				QueryTimeNsec:  &qnsec,
				QueryMessage:   query,
			},
		}
	}
	q := mk(dt.Message_AUTH_QUERY)
	r := mk(dt.Message_AUTH_RESPONSE)
	r.Message.ResponseTimeSec, r.Message.ResponseTimeNsec = &rsec, &rnsec
	r.Message.ResponseMessage = resp
	return []*dt.Dnstap{q, r}
}
