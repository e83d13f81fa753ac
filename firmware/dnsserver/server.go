package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

// Config is what the server needs from the node config.
type Config struct {
	// Listen are host:port addresses; each gets UDP and TCP sockets.
	Listen []string
	// Identity answers CHAOS id.server and hostname.bind; default: host name.
	Identity string
	// NSID is returned to EDNS NSID requests (RFC 5001); default: Identity.
	NSID string
	// Version answers CHAOS version.bind; empty hides it (REFUSED).
	Version string
	// MaxUDPSize is the EDNS payload size we advertise and send up to.
	MaxUDPSize int
	// UDPWorkers is the number of SO_REUSEPORT sockets (and goroutines) per
	// UDP address; default GOMAXPROCS.
	UDPWorkers int
	// TCPIdleTimeout closes idle TCP connections (RFC 7766 §6.2.3).
	TCPIdleTimeout time.Duration
	// TCPMaxConns bounds concurrent TCP connections across all listeners.
	TCPMaxConns int
	// TCPMaxConnsPerClient bounds concurrent TCP connections from one
	// client prefix (RRL's IPv4Prefix/IPv6Prefix, /24 and /56 by default).
	TCPMaxConnsPerClient int
	// ClientIPv4Prefix and ClientIPv6Prefix group TCP clients for that
	// limit; default RRL's, or /24 and /56.
	ClientIPv4Prefix, ClientIPv6Prefix int
	// Transfers, when set, handles NOTIFY and AXFR/IXFR (transfer.go).
	Transfers TransferHandler
	Logger    *slog.Logger

	// DNS cookies (cookie.go), on unless CookiesOff. CookieSecrets: the
	// first mints, the others only verify; none: a random one.
	CookiesOff       bool
	CookieSecrets    []CookieSecret
	RequireCookieUDP bool
	// ClockSynced reports whether the clock can be trusted to mint
	// cookies; nil means it can. Now replaces time.Now (tests).
	ClockSynced func() bool
	Now         func() time.Time
	// RRL, when set, limits UDP responses (rrl.go).
	RRL *RRLConfig
}

// Defaults for Config fields left zero, the config document's (package
// config owns them).
const (
	DefaultMaxUDPSize     = config.DefaultMaxUDPSize
	DefaultTCPIdleTimeout = config.DefaultTCPIdleTimeout
	DefaultTCPMaxConns    = config.DefaultTCPMaxConns
	// DefaultTCPMaxConnsPerClient is the per-prefix TCP connection limit.
	DefaultTCPMaxConnsPerClient = config.DefaultTCPMaxConnsPerClient
)

func (c *Config) setDefaults() {
	if c.Identity == "" {
		c.Identity, _ = os.Hostname()
	}
	if c.NSID == "" {
		c.NSID = c.Identity
	}
	if c.MaxUDPSize == 0 {
		c.MaxUDPSize = DefaultMaxUDPSize
	}
	if c.MaxUDPSize < 512 {
		c.MaxUDPSize = 512
	}
	if c.UDPWorkers <= 0 {
		c.UDPWorkers = runtime.GOMAXPROCS(0)
	}
	if c.TCPIdleTimeout == 0 {
		c.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	if c.TCPMaxConns <= 0 {
		c.TCPMaxConns = DefaultTCPMaxConns
	}
	if c.TCPMaxConnsPerClient <= 0 {
		c.TCPMaxConnsPerClient = DefaultTCPMaxConnsPerClient
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server answers queries for the zones it holds.
type Server struct {
	cfg   Config
	table atomic.Pointer[table]
	mu    sync.Mutex // serialises writers of table; readers never take it

	tcpSlots chan struct{}
	done     chan struct{}
	doneOnce sync.Once
	closers  []func() error
	addrs    []string
	wg       sync.WaitGroup
	stats    Stats
	metrics  *serverMetrics          // per-worker query counters (metrics.go)
	tap      atomic.Pointer[tapSink] // dnstap, when set (tap.go)
	jar      *cookieJar              // nil: cookies off (cookie.go)
	rrl      *rrlTable               // nil: RRL off (rrl.go)
	tcpPer   tcpClients              // TCP connections per client prefix (tcp.go)
}

// Stats are counters kept cheap enough for the query path.
type Stats struct {
	Queries  atomic.Uint64
	Fast     atomic.Uint64
	Dropped  atomic.Uint64
	TCPConns atomic.Int64
}

// table is the immutable set of zones a query sees.
type table struct {
	zones map[string]*Zone // by wire origin
	// lens has bit L set when some zone's wire origin is L bytes long:
	// the fast path looks up only the suffixes of a query name that
	// long (one map lookup, not one per label, for most names).
	lens [4]uint64
	// few holds the zones when there are at most fewZones: comparing a
	// suffix with each is cheaper than hashing it for the map.
	few []*Zone
}

const fewZones = 8

// index fills lens and few from zones; the table is not changed after.
func (t *table) index() *table {
	for k, z := range t.zones {
		t.lens[len(k)>>6] |= 1 << (len(k) & 63)
		if len(t.zones) <= fewZones {
			t.few = append(t.few, z)
		}
	}
	return t
}

// lookup returns the zone whose origin is the wire name suffix, or nil.
func (t *table) lookup(suffix []byte) *Zone {
	if t.few == nil {
		return t.zones[string(suffix)]
	}
	for _, z := range t.few {
		if z.apex == string(suffix) {
			return z
		}
	}
	return nil
}

func (t *table) mayHold(n int) bool { return t.lens[n>>6]&(1<<(n&63)) != 0 }

// New returns a server with no zones; Start opens its sockets.
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{cfg: cfg, tcpSlots: make(chan struct{}, cfg.TCPMaxConns), done: make(chan struct{})}
	s.metrics = newServerMetrics(cfg.UDPWorkers * len(cfg.Listen))
	if !cfg.CookiesOff {
		s.jar = newCookieJar(&s.cfg)
	}
	if cfg.RRL != nil {
		s.rrl = newRRL(cfg.RRL, cfg.Now)
	}
	s.tcpPer.init(&s.cfg)
	s.table.Store((&table{zones: map[string]*Zone{}}).index())
	return s
}

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Replace swaps in a whole new set of zones at once (used at start).
func (s *Server) Replace(zones []*Zone) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &table{zones: make(map[string]*Zone, len(zones))}
	for _, z := range zones {
		s.metrics.attach(z)
		t.zones[z.apex] = z
	}
	s.table.Store(t.index())
}

// Put adds or replaces one zone. Queries in flight finish on the old
// snapshot; the next query sees the new one.
func (s *Server) Put(z *Zone) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.table.Load()
	t := &table{zones: make(map[string]*Zone, len(old.zones)+1)}
	for k, v := range old.zones {
		t.zones[k] = v
	}
	s.metrics.attach(z)
	t.zones[z.apex] = z
	s.table.Store(t.index())
}

// Delete removes a zone; it reports whether the zone was there.
func (s *Server) Delete(origin string) bool {
	w, err := wireName(origin)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.table.Load()
	if _, ok := old.zones[w]; !ok {
		return false
	}
	t := &table{zones: make(map[string]*Zone, len(old.zones))}
	for k, v := range old.zones {
		if k != w {
			t.zones[k] = v
		}
	}
	s.table.Store(t.index())
	s.metrics.forget(w)
	return true
}

// Zone returns the snapshot currently served for origin, or nil.
func (s *Server) Zone(origin string) *Zone {
	w, err := wireName(origin)
	if err != nil {
		return nil
	}
	return s.table.Load().zones[w]
}

// Zones returns the number of zones served.
func (s *Server) Zones() int { return len(s.table.Load().zones) }

// find returns the closest enclosing zone for a wire name. A DS question
// at a zone's apex belongs to the parent zone when we serve it too
// (RFC 4035 §3.1.4.1).
func (t *table) find(key string, qtype uint16) *Zone {
	for i := 0; i < len(key); i += int(key[i]) + 1 {
		if z := t.zones[key[i:]]; z != nil {
			if i == 0 && qtype == dns.TypeDS && len(key) > 1 {
				if p := t.find(key[int(key[0])+1:], 0); p != nil {
					return p
				}
			}
			return z
		}
		if key[i] == 0 {
			break
		}
	}
	return nil
}

// Start opens the listeners and serves until ctx ends or Close is called.
func (s *Server) Start(ctx context.Context) error {
	for _, addr := range s.cfg.Listen {
		bound, err := s.listenUDP(addr)
		if err != nil {
			s.Close()
			return fmt.Errorf("dns: udp %s: %w", addr, err)
		}
		if err := s.listenTCP(bound); err != nil {
			s.Close()
			return fmt.Errorf("dns: tcp %s: %w", addr, err)
		}
	}
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	return nil
}

// Close stops all listeners and waits for the workers.
func (s *Server) Close() error {
	s.doneOnce.Do(func() { close(s.done) })
	s.mu.Lock()
	closers := s.closers
	s.closers = nil
	s.mu.Unlock()
	var errs []error
	for _, c := range closers {
		if err := c(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

func (s *Server) closing() <-chan struct{} { return s.done }

// Addrs returns the addresses actually bound (ports chosen for ":0").
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.addrs...)
}

func (s *Server) addCloser(c func() error) {
	s.mu.Lock()
	s.closers = append(s.closers, c)
	s.mu.Unlock()
}

// handle answers one query held in q from client, writing into out
// (capacity maxMsg). It returns nil when nothing is to be sent.
func (s *Server) handle(q *query, out []byte, tcp bool, client netip.Addr) []byte {
	s.stats.Queries.Add(1)
	q.client = client.Unmap()
	if s.cfg.Now != nil {
		q.recv = s.cfg.Now().UnixNano()
	}
	var resp []byte
	if s.jar != nil && !q.formerr && (q.cookieLen != 0 || q.cookieBad) {
		if q.cookieBad {
			q.formerr = true // RFC 7873 §5.2.2
		} else if s.jar.process(q, tcp) {
			resp = s.badCookie(q, out)
		}
	}
	if resp == nil {
		resp = s.answer(q, out, tcp)
	}
	if s.rrl != nil && !tcp && resp != nil && q.cookieState != cookieValid {
		resp = s.limit(q, resp, out)
	}
	return resp
}

// answer writes the reply to q, from precomputed data when it can.
func (s *Server) answer(q *query, out []byte, tcp bool) []byte {
	limit := maxMsg
	if !tcp {
		limit = 512
		if q.edns {
			limit = int(q.udpSize)
			if limit < 512 {
				limit = 512
			}
			if limit > s.cfg.MaxUDPSize {
				limit = s.cfg.MaxUDPSize
			}
		}
	}
	if resp := s.fast(q, out, limit); resp != nil {
		s.stats.Fast.Add(1)
		return resp
	}
	return s.slow(q, out, limit, tcp)
}

// fast answers from precomputed data, or returns nil for the slow path.
// Maps are indexed as m[string(bytes)] so no name is allocated.
func (s *Server) fast(q *query, out []byte, limit int) []byte {
	if q.formerr || q.opcode != dns.OpcodeQuery || q.qclass != dns.ClassINET || q.version != 0 || q.qend == 12 {
		return nil
	}
	switch q.qtype {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeRRSIG, dns.TypeDS, dns.TypeOPT, dns.TypeMAILA, dns.TypeMAILB, dns.TypeTSIG, dns.TypeTKEY:
		return nil
	}
	key := q.key[:q.keyLen]
	t := s.table.Load()
	var z *Zone
	for i := 0; i < len(key); i += int(key[i]) + 1 {
		if !t.mayHold(len(key) - i) {
			continue
		}
		if z = t.lookup(key[i:]); z != nil {
			break
		}
	}
	if z == nil || z.expired {
		return nil
	}
	// DO on a signed zone: positive answers come pre-packed too, with
	// their RRSIGs behind (emitSigned). Denials and wildcard answers
	// are packed per query from the snapshot (emitProof): the SOA with
	// its RRSIGs, then the NSEC or NSEC3 records that prove the name or
	// type does not exist, chosen as the slow path chooses them
	// (denyNameProof and the others, resolve.go), with theirs. A zone
	// whose denials cannot be packed so has no z.neg.
	do := q.do && z.signed
	q.zone = z
	if ni, ok := z.findBytes(key); ok {
		n := &z.nodes[ni]
		if !n.plain {
			return nil
		}
		if rs := n.set(q.qtype); rs != nil {
			if do {
				return s.emitSigned(q, out, limit, z, rs)
			}
			return s.emit(q, out, limit, z, rs, 0)
		}
		if do {
			if z.neg == nil {
				return nil
			}
			return s.emitProof(q, out, limit, z, dns.RcodeSuccess, nil, true, noDataProof(z, ni))
		}
		return s.emitNegative(q, out, limit, z, dns.RcodeSuccess)
	}
	if do && z.neg == nil {
		return nil
	}
	// Walk up to the closest encloser.
	for i := int(key[0]) + 1; i < len(key); i += int(key[i]) + 1 {
		var ce *node
		if len(key)-i == len(z.apex) {
			ce = z.apexN // the suffix that long is the apex: no lookup
		} else {
			ci, ok := z.findBytes(key[i:])
			if !ok {
				continue
			}
			ce = &z.nodes[ci]
		}
		if !ce.plain || ce.set(dns.TypeDNAME) != nil {
			return nil
		}
		// The wildcard at the closest encloser (ce is a proper suffix
		// of a name of at most 255 bytes: "*." and it fit).
		var wk [256]byte
		wl := copy(wk[:], "\x01*")
		wl += copy(wk[wl:], key[i:])
		if !ce.wild {
			if do {
				return s.emitProof(q, out, limit, z, dns.RcodeNameError, nil, true, denyNameProof(z, ce, key))
			}
			return s.emitNegative(q, out, limit, z, dns.RcodeNameError)
		}
		wi, ok := z.findBytes(wk[:wl])
		if !ok {
			return nil
		}
		w := &z.nodes[wi]
		if !w.plain {
			return nil
		}
		q.wild = w.key
		if rs := w.set(q.qtype); rs != nil {
			if do {
				return s.emitWildSigned(q, out, limit, z, rs, ce, key)
			}
			return s.emit(q, out, limit, z, rs, len(key)-len(w.key))
		}
		if do {
			return s.emitProof(q, out, limit, z, dns.RcodeSuccess, nil, true, wildNoDataProof(z, wi, ce, key))
		}
		return s.emitNegative(q, out, limit, z, dns.RcodeSuccess)
	}
	return nil
}

// emit writes a pre-packed answer behind the query's own question, moving
// compression pointers when the question name is delta bytes longer than
// the one it was packed for (wildcard expansion).
func (s *Server) emit(q *query, out []byte, limit int, z *Zone, rs *rrset, delta int) []byte {
	if rs.fastLen == 0 {
		return nil
	}
	b := z.arena[rs.fast : rs.fast+uint32(rs.fastLen)]
	nrel := int(binary.BigEndian.Uint16(b[8:]))
	tail := b[fastHdr+2*nrel:]
	if q.qend+len(tail)+optLen(q, s.cfg.NSID) > limit {
		return nil // the slow path truncates properly
	}
	out = append(out[:0], 0, 0, 0, 0, 0, 1)
	out = append(out, b[2:8]...)
	f := binary.BigEndian.Uint16(b)
	q.header(out, f&flagAA != 0, false, int(f&0xF))
	out = append(out, q.msg[12:q.qend]...)
	base := len(out)
	out = append(out, tail...)
	if delta != 0 {
		for i := 0; i < nrel; i++ {
			at := base + int(binary.BigEndian.Uint16(b[fastHdr+2*i:]))
			ptr := int(binary.BigEndian.Uint16(out[at:]) & 0x3FFF)
			if ptr > 12 {
				binary.BigEndian.PutUint16(out[at:], uint16(0xC000|(ptr+delta)))
			}
		}
	}
	if q.edns {
		out = appendOPT(out, uint16(s.cfg.MaxUDPSize), 0, q.do, nsidFor(q, s.cfg.NSID), q.cookieOut())
		binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])+1)
	}
	return out
}

// emitSigned writes a pre-packed answer for a query with DO set at a name
// that exists: the answer without DO, then the RRset's signatures, each
// behind a pointer to the question name — what the slow path packs, since
// RRSIG RDATA is never compressed (RFC 4034 §3.1.7) and nothing else
// follows. An answer with authority or additional records (NS and MX
// targets' addresses, which have signatures of their own) or with
// wildcard relocations (the wildcard's own name asked) is left to the
// slow path. Wildcard expansions, which carry an NSEC proof behind their
// signatures, are emitWildSigned's, and denials emitProof's (denial.go).
func (s *Server) emitSigned(q *query, out []byte, limit int, z *Zone, rs *rrset) []byte {
	if rs.fastLen == 0 {
		return nil
	}
	b := z.arena[rs.fast : rs.fast+uint32(rs.fastLen)]
	if binary.BigEndian.Uint32(b[4:]) != 0 || binary.BigEndian.Uint16(b[8:]) != 0 {
		return nil // NS or AR records, or relocations
	}
	tail := b[fastHdr:]
	sigs := z.arena[rs.sigOff:rs.sigOff]
	if rs.sigN > 0 {
		end := int(rs.sigOff)
		for i := 0; i < int(rs.sigN); i++ {
			end += 6 + int(binary.BigEndian.Uint16(z.arena[end+4:]))
		}
		sigs = z.arena[rs.sigOff:end]
	}
	// Each signature grows by its owner pointer, TYPE and CLASS.
	if q.qend+len(tail)+len(sigs)+6*int(rs.sigN)+optLen(q, s.cfg.NSID) > limit {
		return nil // the slow path truncates properly
	}
	out = append(out[:0], 0, 0, 0, 0, 0, 1)
	out = binary.BigEndian.AppendUint16(out, binary.BigEndian.Uint16(b[2:])+rs.sigN)
	out = append(out, 0, 0, 0, 0)
	f := binary.BigEndian.Uint16(b)
	q.header(out, f&flagAA != 0, false, int(f&0xF))
	out = append(out, q.msg[12:q.qend]...)
	out = append(out, tail...)
	for len(sigs) > 0 {
		n := 6 + int(binary.BigEndian.Uint16(sigs[4:]))
		out = append(out, 0xC0, 12, 0, byte(dns.TypeRRSIG), 0, byte(dns.ClassINET))
		out = append(out, sigs[:n]...)
		sigs = sigs[n:]
	}
	if q.edns {
		out = appendOPT(out, uint16(s.cfg.MaxUDPSize), 0, q.do, nsidFor(q, s.cfg.NSID), q.cookieOut())
		out[11] = 1
	}
	return out
}

// emitWildSigned writes a wildcard expansion of key below ce with DO: the
// pre-packed answer, its RRSIGs and the NSEC or NSEC3 that proves the
// name asked does not exist (wildAnswerProof). Answers whose RDATA holds
// names (which would move the proof's compression, and for MX, NS and
// SRV bring addresses in the additional section) take the slow path.
func (s *Server) emitWildSigned(q *query, out []byte, limit int, z *Zone, rs *rrset, ce *node, key []byte) []byte {
	if rs.fastLen == 0 || !nameFreeRdata(rs.t) {
		return nil
	}
	b := z.arena[rs.fast : rs.fast+uint32(rs.fastLen)]
	if binary.BigEndian.Uint32(b[4:]) != 0 {
		return nil // authority or additional records
	}
	return s.emitProof(q, out, limit, z, dns.RcodeSuccess, rs, false, wildAnswerProof(z, ce, key))
}

// emitNegative writes NODATA or NXDOMAIN: the SOA with the negative TTL,
// packed once for the zone behind its apex (negBlock), its pointers moved
// behind the question asked.
func (s *Server) emitNegative(q *query, out []byte, limit int, z *Zone, rcode int) []byte {
	t := &z.tmpl
	key := q.key[:q.keyLen]
	if !t.serves(key, len(z.apex)) || q.qend+len(t.block)+optLen(q, s.cfg.NSID) > limit {
		return nil
	}
	out = append(out[:0], 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0)
	q.header(out, true, false, rcode)
	out = append(out, q.msg[12:q.qend]...)
	base := len(out)
	out = append(out, t.block...)
	t.move(out[base:], len(key)-len(z.apex))
	if q.edns {
		out = appendOPT(out, uint16(s.cfg.MaxUDPSize), 0, q.do, nsidFor(q, s.cfg.NSID), q.cookieOut())
		out[11] = 1
	}
	return out
}

// slow answers everything else by resolving the question now.
func (s *Server) slow(q *query, out []byte, limit int, tcp bool) []byte {
	size := uint16(s.cfg.MaxUDPSize)
	nsid := s.cfg.NSID
	if q.formerr {
		q.edns = false // the OPT, if any, could not be trusted
		return packError(out, q, dns.RcodeFormatError, nsid, size)
	}
	if q.edns && q.version != 0 {
		// RFC 6891 §6.1.3: BADVERS, no answer, our own version (0).
		return packResponse(out, q, &response{rcode: dns.RcodeBadVers}, limit, nsid, size)
	}
	if q.opcode != dns.OpcodeQuery {
		// RFC 1035 §4.1.1: of the header, only ID, opcode and RD are
		// copied from a query the server does not implement.
		q.cd = false
		return packError(out, q, dns.RcodeNotImplemented, nsid, size)
	}
	if q.qend == 12 {
		return packError(out, q, dns.RcodeFormatError, nsid, size)
	}
	switch q.qclass {
	case dns.ClassINET:
	case dns.ClassCHAOS:
		return packResponse(out, q, s.chaos(q), limit, nsid, size)
	default:
		return packError(out, q, dns.RcodeRefused, nsid, size)
	}
	switch q.qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		// Transfers only make sense over TCP (NOTIMP over UDP, as Knot
		// and NSD answer); over TCP they are refused until the transfer
		// service allows the client.
		if !tcp {
			return packError(out, q, dns.RcodeNotImplemented, nsid, size)
		}
		return packError(out, q, dns.RcodeRefused, nsid, size)
	}
	key := q.keyString()
	z := s.table.Load().find(key, q.qtype)
	q.zone = z
	if z == nil {
		return packError(out, q, dns.RcodeRefused, nsid, size)
	}
	if z.expired {
		return packResponse(out, q, &response{rcode: dns.RcodeServerFailure}, limit, nsid, size)
	}
	r := z.resolve(key, presentation(key), q.qtype, q.do && z.signed)
	q.wild, q.cut = r.wild, r.cut
	return packResponse(out, q, r, limit, nsid, size)
}

// chaos answers the CHAOS-class identity questions operators use to see
// which node of an anycast set they reached.
func (s *Server) chaos(q *query) *response {
	if q.qtype != dns.TypeTXT && q.qtype != dns.TypeANY {
		return &response{rcode: dns.RcodeRefused}
	}
	var txt string
	switch strings.ToLower(presentation(q.keyString())) {
	case "id.server.", "hostname.bind.":
		txt = s.cfg.Identity
	case "version.bind.", "version.server.":
		txt = s.cfg.Version
	}
	if txt == "" {
		return &response{rcode: dns.RcodeRefused}
	}
	name := presentation(q.keyString())
	// Not AA: the CHAOS names are not a zone we are authoritative for
	// (Knot and NSD answer the same way).
	return &response{answer: []dns.RR{&dns.TXT{
		Hdr: dns.RR_Header{Name: strings.ToLower(name), Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS},
		Txt: []string{txt},
	}}}
}
