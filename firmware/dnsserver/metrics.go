package dnsserver

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Query metrics are counted where the queries are answered, per writer: each
// UDP worker owns a shard of counters that no other core writes, so counting
// costs an uncontended atomic add on a cache line the worker already holds,
// never a line bouncing between cores the way one shared counter would. All
// TCP connections share one shard (TCP is the rare case), and DNS served on
// other sockets (the tailnet) another. Reading sums the shards; readers are
// scrapes, a few a minute, and take all the cost.
//
// Per zone the counters are by response code; by query type they are per
// shard, for all zones together: zone × type × rcode would cost a 512 MB box
// too much memory for a node with thousands of zones.

// Protocol names as the metrics label them.
const (
	ProtoUDP = "udp"
	ProtoTCP = "tcp"
)

// rcode buckets: the codes the server sends, and "other".
const (
	rcBadVers = 6
	rcOther   = 7
	nRcode    = 8
)

var rcodeNames = [nRcode]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other"}

// Query types counted by name; the rest are "other" (index 0).
var countedTypes = [...]uint16{
	dns.TypeA, dns.TypeNS, dns.TypeCNAME, dns.TypeSOA, dns.TypePTR, dns.TypeMX,
	dns.TypeTXT, dns.TypeAAAA, dns.TypeSRV, dns.TypeNAPTR, dns.TypeDS,
	dns.TypeRRSIG, dns.TypeNSEC, dns.TypeDNSKEY, dns.TypeNSEC3,
	dns.TypeNSEC3PARAM, dns.TypeTLSA, dns.TypeSVCB, dns.TypeHTTPS,
	dns.TypeCAA, dns.TypeIXFR, dns.TypeAXFR, dns.TypeANY,
}

const nQtype = len(countedTypes) + 1

// qtypeSlot maps a query type below 256 to its counter; CAA (257) is the
// only counted type above, checked on its own.
var qtypeSlot = func() (t [256]uint8) {
	for i, qt := range countedTypes {
		if qt < 256 {
			t[qt] = uint8(i + 1)
		}
	}
	return t
}()

func qtypeIndex(qt uint16) int {
	if qt < 256 {
		return int(qtypeSlot[qt])
	}
	if qt == dns.TypeCAA {
		for i, c := range countedTypes {
			if c == qt {
				return i + 1
			}
		}
	}
	return 0
}

// Latency buckets are powers of two from 512 ns to 67 ms, and +Inf: cheap
// to find (one bit count) and wide enough for a box where an answer takes a
// few microseconds and a stalled one milliseconds.
const (
	latShift = 9 // first bound 2^9 ns
	nLat     = 19
)

func latencyBucket(ns int64) int {
	if ns <= 1<<latShift {
		return 0
	}
	b := bits.Len64(uint64(ns-1) >> latShift)
	if b >= nLat {
		b = nLat - 1
	}
	return b
}

// LatencyBounds returns the histogram's upper bounds in seconds (without
// +Inf).
func LatencyBounds() []float64 {
	out := make([]float64, nLat-1)
	for i := range out {
		out[i] = float64(int64(1)<<(latShift+i)) / 1e9
	}
	return out
}

// shard is one writer's counters.
type shard struct {
	id     int
	tcp    bool
	qtype  [nQtype]atomic.Uint64
	noZone [nRcode]atomic.Uint64 // answers outside any zone (REFUSED, CHAOS, FORMERR)
	silent atomic.Uint64         // queries that got no answer
	lat    [nLat]atomic.Uint64
	latSum atomic.Uint64 // nanoseconds
	// Abuse resistance: queries by cookie state, BADCOOKIE replies sent,
	// and replies RRL limited, by class and action (slip, drop).
	cookies   [nCookieStates]atomic.Uint64
	badCookie atomic.Uint64
	rrl       [nRRLClass][2]atomic.Uint64
	_         [64]byte // keep the next shard's counters off this one's last line
}

// zoneShard is one writer's answers for one zone, by rcode: one cache line.
type zoneShard struct {
	rcode [nRcode]atomic.Uint64
}

// zoneStats are a zone's counters. They belong to the zone's name, not to
// a snapshot, so they keep counting across zone updates; a writer's shard
// is allocated the first time that writer answers for the zone.
type zoneStats struct {
	shards []atomic.Pointer[zoneShard]
}

func (z *zoneStats) shard(id int) *zoneShard {
	p := z.shards[id].Load()
	if p == nil {
		p = new(zoneShard)
		z.shards[id].Store(p)
	}
	return p
}

// serverMetrics holds every shard and the per-zone counters.
type serverMetrics struct {
	shards []*shard // UDP workers, then TCP, then other packet sockets
	udp    atomic.Int32
	mu     sync.Mutex
	zones  map[string]*zoneStats // by wire origin
}

func newServerMetrics(udpWorkers int) *serverMetrics {
	m := &serverMetrics{zones: map[string]*zoneStats{}}
	for i := 0; i < udpWorkers+2; i++ {
		m.shards = append(m.shards, &shard{id: i, tcp: i == udpWorkers})
	}
	return m
}

// udpShard hands each UDP worker its own shard; workers beyond the number
// planned share the shard of the other packet sockets.
func (m *serverMetrics) udpShard() *shard {
	i := int(m.udp.Add(1)) - 1
	if i >= len(m.shards)-2 {
		return m.packetShard()
	}
	return m.shards[i]
}

func (m *serverMetrics) tcpShard() *shard    { return m.shards[len(m.shards)-2] }
func (m *serverMetrics) packetShard() *shard { return m.shards[len(m.shards)-1] }

// attach gives a new snapshot its zone's counters.
func (m *serverMetrics) attach(z *Zone) {
	m.mu.Lock()
	defer m.mu.Unlock()
	zs := m.zones[z.apex]
	if zs == nil {
		zs = &zoneStats{shards: make([]atomic.Pointer[zoneShard], len(m.shards))}
		m.zones[z.apex] = zs
	}
	// A snapshot put again is already being read: write only a new one.
	if z.stats != zs {
		z.stats = zs
	}
}

// forget drops a deleted zone's counters; queries still in flight on its
// last snapshot count into the detached ones.
func (m *serverMetrics) forget(apex string) {
	m.mu.Lock()
	delete(m.zones, apex)
	m.mu.Unlock()
}

// count records one answered (or unanswered) query. It runs for every
// query, so it only adds to counters the calling writer owns.
func (sh *shard) count(q *query, resp []byte) {
	sh.qtype[qtypeIndex(q.qtype)].Add(1)
	if q.cookieState != cookieNone {
		sh.cookies[q.cookieState].Add(1)
		if q.badCookie && resp != nil {
			sh.badCookie.Add(1)
		}
	}
	if q.rrlAction != rrlPass {
		sh.rrl[q.rrlClass][q.rrlAction-1].Add(1)
	}
	if resp == nil {
		sh.silent.Add(1)
		return
	}
	rc := int(resp[3] & 0xF)
	switch {
	case rc == dns.RcodeSuccess && q.edns && q.version != 0:
		rc = rcBadVers // the extended rcode lives in the OPT record
	case rc >= rcBadVers:
		rc = rcOther
	}
	if z := q.zone; z != nil && z.stats != nil {
		z.stats.shard(sh.id).rcode[rc].Add(1)
		return
	}
	sh.noZone[rc].Add(1)
}

// observe records the time n answers took, from receipt to send.
func (sh *shard) observe(d time.Duration, n int) {
	sh.lat[latencyBucket(int64(d))].Add(uint64(n))
	sh.latSum.Add(uint64(d) * uint64(n))
}

// QueryMetrics is a point-in-time sum of the server's query counters.
type QueryMetrics struct {
	// ByType counts queries per protocol and query type name.
	ByType map[string]map[string]uint64
	// Zones counts answers per zone (presentation origin), protocol and
	// rcode; answers outside any served zone are under "".
	Zones map[string]map[string]map[string]uint64
	// Unanswered counts queries per protocol that got no reply.
	Unanswered map[string]uint64
	// Latency is the time from receipt to send per protocol.
	Latency map[string]Histogram
	// Serials is the serial of the snapshot each served zone is answered
	// from now.
	Serials map[string]uint32
	// Cookies counts queries by cookie state (client_only, invalid,
	// valid) and BADCOOKIE replies sent (badcookie).
	Cookies map[string]uint64
	// RRL counts replies rate limiting changed, by class (positive,
	// wildcard, nxdomain, nodata, referral, error) and action (slip,
	// drop).
	RRL map[string]map[string]uint64
	// TCPRefusedPerClient counts TCP connections closed at once because
	// their client prefix was at its limit.
	TCPRefusedPerClient uint64
}

// Histogram is a cumulative latency histogram; Buckets match
// LatencyBounds, Count includes the +Inf bucket.
type Histogram struct {
	Buckets []uint64
	Count   uint64
	Sum     time.Duration
}

// QueryMetrics sums the shards.
func (s *Server) QueryMetrics() QueryMetrics {
	m := s.metrics
	out := QueryMetrics{
		ByType:     map[string]map[string]uint64{},
		Zones:      map[string]map[string]map[string]uint64{},
		Unanswered: map[string]uint64{},
		Latency:    map[string]Histogram{},
		Serials:    map[string]uint32{},
		Cookies:    map[string]uint64{},
		RRL:        map[string]map[string]uint64{},
	}
	out.TCPRefusedPerClient = s.tcpPer.refused.Load()
	lat := map[string]*[nLat]uint64{}
	latSum := map[string]uint64{}
	add := func(zone, proto string, rc int, v uint64) {
		if v == 0 {
			return
		}
		byProto := out.Zones[zone]
		if byProto == nil {
			byProto = map[string]map[string]uint64{}
			out.Zones[zone] = byProto
		}
		if byProto[proto] == nil {
			byProto[proto] = map[string]uint64{}
		}
		byProto[proto][rcodeNames[rc]] += v
	}
	for _, sh := range m.shards {
		proto := ProtoUDP
		if sh.tcp {
			proto = ProtoTCP
		}
		if out.ByType[proto] == nil {
			out.ByType[proto] = map[string]uint64{}
			lat[proto] = new([nLat]uint64)
		}
		for i := range sh.qtype {
			if v := sh.qtype[i].Load(); v != 0 {
				out.ByType[proto][qtypeName(i)] += v
			}
		}
		for rc := range sh.noZone {
			add("", proto, rc, sh.noZone[rc].Load())
		}
		out.Unanswered[proto] += sh.silent.Load()
		for st := 1; st < nCookieStates; st++ {
			if v := sh.cookies[st].Load(); v != 0 {
				out.Cookies[cookieStateNames[st]] += v
			}
		}
		if v := sh.badCookie.Load(); v != 0 {
			out.Cookies["badcookie"] += v
		}
		for c := range sh.rrl {
			for a, name := range [2]string{"slip", "drop"} {
				if v := sh.rrl[c][a].Load(); v != 0 {
					if out.RRL[rrlClassNames[c]] == nil {
						out.RRL[rrlClassNames[c]] = map[string]uint64{}
					}
					out.RRL[rrlClassNames[c]][name] += v
				}
			}
		}
		for i := range sh.lat {
			lat[proto][i] += sh.lat[i].Load()
		}
		latSum[proto] += sh.latSum.Load()
	}
	m.mu.Lock()
	zones := make(map[string]*zoneStats, len(m.zones))
	for k, v := range m.zones {
		zones[k] = v
	}
	m.mu.Unlock()
	for apex, zs := range zones {
		origin := presentation(apex)
		for id := range zs.shards {
			p := zs.shards[id].Load()
			if p == nil {
				continue
			}
			proto := ProtoUDP
			if m.shards[id].tcp {
				proto = ProtoTCP
			}
			for rc := range p.rcode {
				add(origin, proto, rc, p.rcode[rc].Load())
			}
		}
	}
	for proto, b := range lat {
		h := Histogram{Buckets: make([]uint64, nLat-1), Sum: time.Duration(latSum[proto])}
		for i, v := range b {
			h.Count += v
			if i < nLat-1 {
				h.Buckets[i] = h.Count
			}
		}
		out.Latency[proto] = h
	}
	out.Serials = s.Serials()
	return out
}

func qtypeName(i int) string {
	if i == 0 {
		return "other"
	}
	return dns.TypeToString[countedTypes[i-1]]
}

// Serials returns the serial of the snapshot each served zone is
// answered from, by origin.
func (s *Server) Serials() map[string]uint32 {
	zones := s.table.Load().zones
	out := make(map[string]uint32, len(zones))
	for apex, z := range zones {
		out[presentation(apex)] = z.serial
	}
	return out
}
