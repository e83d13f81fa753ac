// Package catchment is the node's half of a catchment measurement, the
// way Verfploeter does it: on the fleet controller's request the node
// sends ICMP echo requests *from an anycast service address* to the
// targets the operator listed (and to nothing else), at a bounded rate;
// every reply is routed to whichever node's catchment its target is in,
// and that node records it. Every node listens for replies to the
// measurements it was told about and reports what it received (target,
// sending node, this node, when) for the controller to merge into a map
// of target prefix to node.
//
// With DNS on, each target also gets a DNS query from the anycast
// address and a UDP port the controller picked for the measurement (every
// node listens on it), whose name encodes the measurement and the sender
// (dns.go).
//
// A probe's echo identifier is a hash of the measurement id, its
// sequence number a hash of the sending node's name, and its payload
// carries both in full, so any node can tell whose probe a reply
// answers. Sockets are raw ICMP sockets bound to the anycast address
// (CAP_NET_RAW), open only while a measurement listens. Memory is
// bounded: a measurement carries at most MaxTargets targets and keeps at
// most four replies per target, and at most MaxMeasurements are kept.
package catchment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"
)

// MaxMeasurements is how many measurements a node keeps (listening or
// finished); registering one more drops the oldest finished one.
const MaxMeasurements = 4

// repliesPerTarget bounds the replies a measurement keeps.
const repliesPerTarget = 4

// Probe kinds.
const (
	ProbeICMP = "icmp"
	ProbeDNS  = "dns"
)

// States of a measurement on one node.
const (
	Listening = "listening" // registered: replies are recorded
	Sending   = "sending"   // probes are going out (and replies recorded)
	Sent      = "sent"      // every probe is out; still recording replies
	Stopped   = "stopped"   // no longer recording (stopped or timed out)
)

// Errors a caller can tell apart (the API maps them to status codes).
var (
	ErrNotFound = errors.New("no such measurement")
	ErrBusy     = errors.New("too many measurements listening")
	ErrInvalid  = errors.New("invalid measurement request")
)

// Options configure a Prober.
type Options struct {
	// Node is this node's name: the sender in its probes, the receiver
	// in the replies it records.
	Node string
	// Sources returns the anycast service addresses the node may send
	// from (network.anycast).
	Sources func() []netip.Addr
	// Rate is the most probes per second (catchment.rate).
	Rate int
	// MaxTargets bounds a measurement's target list (catchment.max_targets).
	MaxTargets int
	Log        *slog.Logger
}

// Request registers a measurement on a node (POST /api/v1/catchment).
type Request struct {
	// ID names the measurement: 1 to 64 of [A-Za-z0-9._-].
	ID string `json:"id"`
	// Targets are the addresses probed when this node is told to send
	// (and the only sources whose replies are recorded): single
	// addresses, never prefixes.
	Targets []string `json:"targets"`
	// Rate is probes per second; 0 or above the node's catchment.rate
	// is the node's rate.
	Rate int `json:"rate,omitempty"`
	// Sources are the anycast addresses to send from and listen on, at
	// most one per family; empty: the node's first anycast address of
	// each family.
	Sources []string `json:"sources,omitempty"`
	// DNSPort, when set, adds a DNS probe to each target: a query sent
	// from the anycast address and this UDP port (1024-65535; every node
	// listens on it) to the target's port 53.
	DNSPort int `json:"dns_port,omitempty"`
	// Timeout ends the recording this long after registration if no
	// one stops it (default: the time to send every probe plus 60 s;
	// at most 1 h).
	Timeout string `json:"timeout,omitempty"`
}

// Reply is one probe's reply as the receiving node recorded it.
type Reply struct {
	Target   string    `json:"target"`
	Sender   string    `json:"sender"`
	Receiver string    `json:"receiver"`
	Via      string    `json:"via"` // the anycast address it came to
	Probe    string    `json:"probe"`
	At       time.Time `json:"at"`
}

// Status is a measurement on one node (GET /api/v1/catchment/{id}).
type Status struct {
	ID      string   `json:"id"`
	Node    string   `json:"node"`
	State   string   `json:"state"`
	Targets int      `json:"targets"`
	Rate    int      `json:"rate"`
	Sources []string `json:"sources"`
	// Sent counts probes sent by this node, SendErrors those the kernel
	// refused (LastError says why), Skipped targets of a family the node
	// has no source address for.
	Sent       int       `json:"sent"`
	SendErrors int       `json:"send_errors,omitempty"`
	Skipped    int       `json:"skipped,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	Registered time.Time `json:"registered"`
	SendStart  time.Time `json:"send_start,omitzero"`
	SendDone   time.Time `json:"send_done,omitzero"`
	Ends       time.Time `json:"ends"`
	// Dropped counts replies not kept (over the bound), Strangers replies
	// to this measurement from addresses that are not its targets.
	Dropped   int     `json:"dropped,omitempty"`
	Strangers int     `json:"strangers,omitempty"`
	Replies   []Reply `json:"replies"`
}

// Prober runs this node's measurements.
type Prober struct {
	opts Options
	mu   sync.Mutex
	ms   []*measurement // oldest first
}

// New returns a Prober.
func New(opts Options) *Prober {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Sources == nil {
		opts.Sources = func() []netip.Addr { return nil }
	}
	if len(opts.Node) > 255 { // its length is one byte in the probe
		opts.Node = opts.Node[:255]
	}
	return &Prober{opts: opts}
}

type measurement struct {
	id      string
	idHash  uint16
	node    string
	targets map[netip.Addr]bool
	order   []netip.Addr
	rate    int
	conns   map[bool]*net.IPConn  // by "is IPv6"
	udp     map[bool]*net.UDPConn // DNS probes, by "is IPv6"
	srcs    []netip.Addr
	ends    time.Time
	cancel  context.CancelFunc
	ctx     context.Context
	log     *slog.Logger
	maxRep  int

	mu         sync.Mutex
	state      string
	sending    bool
	sent       int
	sendErrors int
	skipped    int
	lastError  string
	registered time.Time
	sendStart  time.Time
	sendDone   time.Time
	dropped    int
	strangers  int
	replies    map[replyKey]Reply
	perTarget  map[netip.Addr]int
}

type replyKey struct {
	target netip.Addr
	sender string
	probe  string
}

// Register starts listening for a measurement's replies. It sends
// nothing: Send does, once every node listens.
func (p *Prober) Register(req Request) (Status, error) {
	if err := checkID(req.ID); err != nil {
		return Status{}, err
	}
	if len(req.Targets) == 0 {
		return Status{}, fmt.Errorf("%w: no targets", ErrInvalid)
	}
	if max := p.opts.MaxTargets; max > 0 && len(req.Targets) > max {
		return Status{}, fmt.Errorf("%w: %d targets, more than catchment.max_targets %d", ErrInvalid, len(req.Targets), max)
	}
	m := &measurement{id: req.ID, idHash: hash16(req.ID), node: p.opts.Node, targets: map[netip.Addr]bool{},
		conns: map[bool]*net.IPConn{}, udp: map[bool]*net.UDPConn{}, replies: map[replyKey]Reply{}, perTarget: map[netip.Addr]int{},
		state: Listening, registered: time.Now(), log: p.opts.Log.With("measurement", req.ID)}
	for i, t := range req.Targets {
		a, err := netip.ParseAddr(t)
		if err != nil {
			return Status{}, fmt.Errorf("%w: targets[%d] %q: not an address (prefixes are not probed: list each target)", ErrInvalid, i, t)
		}
		a = a.Unmap()
		if !a.IsGlobalUnicast() && !a.IsLoopback() {
			return Status{}, fmt.Errorf("%w: targets[%d] %s: not a unicast address", ErrInvalid, i, a)
		}
		if !m.targets[a] {
			m.targets[a] = true
			m.order = append(m.order, a)
		}
	}
	m.maxRep = repliesPerTarget * len(m.order)
	m.rate = p.opts.Rate
	if m.rate <= 0 {
		m.rate = 100
	}
	if req.Rate > 0 && req.Rate < m.rate {
		m.rate = req.Rate
	}
	srcs, err := p.sources(req.Sources)
	if err != nil {
		return Status{}, err
	}
	m.srcs = srcs
	if req.DNSPort != 0 && (req.DNSPort < 1024 || req.DNSPort > 65535) {
		return Status{}, fmt.Errorf("%w: dns_port %d: want 1024-65535", ErrInvalid, req.DNSPort)
	}
	if _, ok := DNSName(req.ID, p.opts.Node); req.DNSPort != 0 && !ok {
		return Status{}, fmt.Errorf("%w: id and node name too long for a DNS probe's name", ErrInvalid)
	}
	probes := 1
	if req.DNSPort != 0 {
		probes = 2
	}
	timeout := time.Duration(probes*len(m.order))*time.Second/time.Duration(m.rate) + 60*time.Second
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			return Status{}, fmt.Errorf("%w: timeout %q: want a positive duration such as 2m", ErrInvalid, req.Timeout)
		}
		timeout = d
	}
	timeout = min(timeout, time.Hour)
	m.ends = m.registered.Add(timeout)

	p.mu.Lock()
	defer p.mu.Unlock()
	for _, old := range p.ms {
		if old.id == req.ID {
			return Status{}, fmt.Errorf("%w: measurement %s is registered already", ErrInvalid, req.ID)
		}
	}
	if len(p.ms) >= MaxMeasurements {
		i := slices.IndexFunc(p.ms, func(x *measurement) bool { return x.status(false).State == Stopped })
		if i < 0 {
			return Status{}, fmt.Errorf("%w: %d measurements are listening; stop one first", ErrBusy, len(p.ms))
		}
		p.ms = slices.Delete(p.ms, i, i+1)
	}
	for _, src := range srcs {
		c, err := net.ListenIP(network(src), &net.IPAddr{IP: src.AsSlice()})
		if err != nil {
			m.closeConns()
			return Status{}, fmt.Errorf("raw ICMP socket on %s (needs CAP_NET_RAW): %w", src, err)
		}
		m.conns[src.Is6()] = c
		if req.DNSPort != 0 {
			u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, uint16(req.DNSPort))))
			if err != nil {
				m.closeConns()
				return Status{}, fmt.Errorf("DNS probe socket on %s port %d: %w", src, req.DNSPort, err)
			}
			m.udp[src.Is6()] = u
		}
	}
	m.ctx, m.cancel = context.WithDeadline(context.Background(), m.ends)
	for _, c := range m.conns {
		go m.receive(c)
	}
	for _, u := range m.udp {
		go m.receiveDNS(u)
	}
	go func() {
		<-m.ctx.Done()
		m.closeConns()
		m.mu.Lock()
		m.state = Stopped
		m.mu.Unlock()
	}()
	p.ms = append(p.ms, m)
	m.log.Info("catchment: listening", "targets", len(m.order), "sources", srcs, "until", m.ends.Format(time.RFC3339))
	return m.status(false), nil
}

// Send starts sending the measurement's probes from this node; it
// returns at once (Get reports progress).
func (p *Prober) Send(id string) (Status, error) {
	m, err := p.get(id)
	if err != nil {
		return Status{}, err
	}
	m.mu.Lock()
	switch {
	case m.state == Stopped:
		m.mu.Unlock()
		return Status{}, fmt.Errorf("%w: measurement %s is stopped", ErrInvalid, id)
	case m.sending || !m.sendStart.IsZero():
		m.mu.Unlock()
		return Status{}, fmt.Errorf("%w: measurement %s was sent already", ErrInvalid, id)
	}
	m.sending, m.state, m.sendStart = true, Sending, time.Now()
	m.mu.Unlock()
	go m.send()
	return m.status(false), nil
}

// Stop ends a measurement's sending and recording.
func (p *Prober) Stop(id string) (Status, error) {
	m, err := p.get(id)
	if err != nil {
		return Status{}, err
	}
	m.cancel()
	m.closeConns()
	m.mu.Lock()
	m.state = Stopped
	m.mu.Unlock()
	return m.status(true), nil
}

// Get reports a measurement with the replies this node recorded.
func (p *Prober) Get(id string) (Status, error) {
	m, err := p.get(id)
	if err != nil {
		return Status{}, err
	}
	return m.status(true), nil
}

// List reports every measurement kept, without replies, oldest first.
func (p *Prober) List() []Status {
	p.mu.Lock()
	ms := slices.Clone(p.ms)
	p.mu.Unlock()
	out := make([]Status, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.status(false))
	}
	return out
}

// Close stops every measurement (the node is stopping).
func (p *Prober) Close() {
	p.mu.Lock()
	ms := slices.Clone(p.ms)
	p.mu.Unlock()
	for _, m := range ms {
		if m.cancel != nil {
			m.cancel()
		}
		m.closeConns()
	}
}

func (p *Prober) get(id string) (*measurement, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.ms {
		if m.id == id {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
}

// sources picks the addresses to send from: asked ones must be the
// node's anycast addresses; none asked, the first of each family.
func (p *Prober) sources(asked []string) ([]netip.Addr, error) {
	have := p.opts.Sources()
	if len(have) == 0 {
		return nil, fmt.Errorf("%w: the node has no anycast address to send from (network.anycast is empty)", ErrInvalid)
	}
	var out []netip.Addr
	fam := map[bool]bool{}
	if len(asked) == 0 {
		for _, a := range have {
			if !fam[a.Is6()] {
				fam[a.Is6()] = true
				out = append(out, a)
			}
		}
		return out, nil
	}
	for _, s := range asked {
		a, err := netip.ParseAddr(s)
		if err != nil || !slices.Contains(have, a.Unmap()) {
			return nil, fmt.Errorf("%w: source %q is not one of the node's anycast addresses %v", ErrInvalid, s, have)
		}
		a = a.Unmap()
		if fam[a.Is6()] {
			return nil, fmt.Errorf("%w: sources: more than one address of a family (%s)", ErrInvalid, s)
		}
		fam[a.Is6()] = true
		out = append(out, a)
	}
	return out, nil
}

func checkID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("%w: id %q: want 1 to 64 characters", ErrInvalid, id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: id %q: only letters, digits, '.', '_' and '-'", ErrInvalid, id)
		}
	}
	return nil
}

func network(a netip.Addr) string {
	if a.Is6() {
		return "ip6:ipv6-icmp"
	}
	return "ip4:icmp"
}

func (m *measurement) closeConns() {
	for _, c := range m.conns {
		c.Close()
	}
	for _, u := range m.udp {
		u.Close()
	}
}

// send paces the probes: probe i leaves at start + i/rate (with DNS on,
// each target takes two).
func (m *measurement) send() {
	start := time.Now()
	interval := time.Second / time.Duration(m.rate)
	seq := hash16(m.node)
	i := 0
	wait := func() bool {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-m.ctx.Done():
			case <-time.After(d):
			}
		}
		i++
		return m.ctx.Err() == nil
	}
	count := func(t netip.Addr, err error) {
		m.mu.Lock()
		if err != nil {
			m.sendErrors++
			m.lastError = fmt.Sprintf("%s: %v", t, err)
		} else {
			m.sent++
		}
		m.mu.Unlock()
	}
	dnsQuery, _ := DNSProbe(m.id, m.node)
	for _, t := range m.order {
		c := m.conns[t.Is6()]
		if c == nil {
			m.mu.Lock()
			m.skipped++
			m.mu.Unlock()
			continue
		}
		if !wait() {
			break
		}
		_, err := c.WriteTo(Probe(t.Is6(), m.id, m.node, seq, time.Now()), &net.IPAddr{IP: t.AsSlice()})
		count(t, err)
		if u := m.udp[t.Is6()]; u != nil && dnsQuery != nil {
			if !wait() {
				break
			}
			_, err := u.WriteToUDPAddrPort(dnsQuery, netip.AddrPortFrom(t, 53))
			count(t, err)
		}
	}
	m.mu.Lock()
	m.sending, m.sendDone = false, time.Now()
	if m.state == Sending {
		m.state = Sent
	}
	sent, errs := m.sent, m.sendErrors
	m.mu.Unlock()
	m.log.Info("catchment: probes sent", "sent", sent, "errors", errs, "took", time.Since(start).Round(time.Millisecond))
}

// receive records echo replies to this measurement until its socket closes.
func (m *measurement) receive(c *net.IPConn) {
	via := netip.Addr{}
	if la, ok := c.LocalAddr().(*net.IPAddr); ok {
		via, _ = netip.AddrFromSlice(la.IP)
		via = via.Unmap()
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		ia, ok := from.(*net.IPAddr)
		if !ok {
			continue
		}
		src, ok := netip.AddrFromSlice(ia.IP)
		if !ok {
			continue
		}
		id, sender, ok := ParseReply(via.Is6(), buf[:n])
		if !ok || id != m.id {
			continue
		}
		m.record(src.Unmap(), sender, via, ProbeICMP)
	}
}

func (m *measurement) record(target netip.Addr, sender string, via netip.Addr, probe string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.targets[target] {
		m.strangers++
		return
	}
	k := replyKey{target, sender, probe}
	if _, dup := m.replies[k]; dup {
		return
	}
	if len(m.replies) >= m.maxRep || m.perTarget[target] >= repliesPerTarget {
		m.dropped++
		return
	}
	m.perTarget[target]++
	m.replies[k] = Reply{Target: target.String(), Sender: sender, Receiver: m.node, Via: via.String(), Probe: probe, At: time.Now().UTC()}
}

func (m *measurement) status(withReplies bool) Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{ID: m.id, Node: m.node, State: m.state, Targets: len(m.order), Rate: m.rate,
		Sent: m.sent, SendErrors: m.sendErrors, Skipped: m.skipped, LastError: m.lastError,
		Registered: m.registered.UTC(), SendStart: m.sendStart.UTC(), SendDone: m.sendDone.UTC(), Ends: m.ends.UTC(),
		Dropped: m.dropped, Strangers: m.strangers, Replies: []Reply{}}
	if m.sendStart.IsZero() {
		s.SendStart = time.Time{}
	}
	if m.sendDone.IsZero() {
		s.SendDone = time.Time{}
	}
	for _, a := range m.srcs {
		s.Sources = append(s.Sources, a.String())
	}
	if withReplies {
		for _, r := range m.replies {
			s.Replies = append(s.Replies, r)
		}
		sort.Slice(s.Replies, func(i, j int) bool {
			a, b := s.Replies[i], s.Replies[j]
			if a.Target != b.Target {
				return a.Target < b.Target
			}
			if a.Sender != b.Sender {
				return a.Sender < b.Sender
			}
			return a.Probe < b.Probe
		})
	}
	return s
}

// The probe: an ICMP echo request whose payload is magic, the
// measurement id and the sender, each with a length byte, and the send
// time (Unix nanoseconds).
var magic = []byte("SSCM1")

// ICMP types.
const (
	echoRequest4 = 8
	echoReply4   = 0
	echoRequest6 = 128
	echoReply6   = 129
)

func hash16(s string) uint16 {
	h := fnv.New32a()
	h.Write([]byte(s))
	v := h.Sum32()
	return uint16(v>>16) ^ uint16(v)
}

// Probe builds an echo request of measurement id from sender (the
// kernel fills in the ICMPv6 checksum).
func Probe(v6 bool, id, sender string, seq uint16, at time.Time) []byte {
	b := make([]byte, 8, 8+len(magic)+2+len(id)+len(sender)+8)
	b[0] = echoRequest4
	if v6 {
		b[0] = echoRequest6
	}
	ident := hash16(id)
	b[4], b[5] = byte(ident>>8), byte(ident)
	b[6], b[7] = byte(seq>>8), byte(seq)
	b = append(b, magic...)
	b = append(b, byte(len(id)))
	b = append(b, id...)
	b = append(b, byte(len(sender)))
	b = append(b, sender...)
	ns := uint64(at.UnixNano())
	for i := 7; i >= 0; i-- {
		b = append(b, byte(ns>>(8*i)))
	}
	if !v6 {
		cs := checksum(b)
		b[2], b[3] = byte(cs>>8), byte(cs)
	}
	return b
}

// ParseReply reads an echo reply to a probe: its measurement id and
// sender; ok is false for anything else.
func ParseReply(v6 bool, b []byte) (id, sender string, ok bool) {
	want := byte(echoReply4)
	if v6 {
		want = echoReply6
	}
	if len(b) < 8+len(magic)+2 || b[0] != want || b[1] != 0 {
		return "", "", false
	}
	ident := uint16(b[4])<<8 | uint16(b[5])
	p := b[8:]
	if !bytes.HasPrefix(p, magic) {
		return "", "", false
	}
	p = p[len(magic):]
	idLen := int(p[0])
	if len(p) < 1+idLen+1 {
		return "", "", false
	}
	id = string(p[1 : 1+idLen])
	p = p[1+idLen:]
	sLen := int(p[0])
	if len(p) < 1+sLen || sLen == 0 || idLen == 0 {
		return "", "", false
	}
	sender = string(p[1 : 1+sLen])
	if hash16(id) != ident {
		return "", "", false
	}
	return id, sender, true
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
