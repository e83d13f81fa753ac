package dnsserver

import (
	"crypto/rand"
	"encoding/binary"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/dchest/siphash"
	"github.com/miekg/dns"
)

// Response rate limiting, accounted the way BIND and NSD do it: a token
// bucket per client prefix and response class, where the class decides
// what else goes into the key:
//
//   - positive answers: the query name and type;
//   - wildcard answers: the wildcard that answered, and the type;
//   - NXDOMAIN and NODATA: the zone, so random names share one bucket;
//   - referrals: the delegation;
//   - errors (REFUSED, FORMERR, SERVFAIL, BADCOOKIE, ...): all together.
//
// A bucket earns its class's rate every second up to one second's worth and
// pays one token per reply; it may run into debt down to Window seconds'
// worth, so a flood has to stop for a while before it is answered again.
// A reply without a token is dropped, except every Slip-th, which goes out
// as a minimal truncated reply (a real client retries over TCP) or, when
// the query carried a client cookie, as BADCOOKIE with a fresh cookie (a
// real client retries with it and is then never limited).
//
// TCP and queries with a valid server cookie are never limited: their
// source address is not spoofed.
//
// The table is fixed at start (TableSize entries, 4-way set associative,
// the least recently used entry of a full set replaced), so its memory
// does not grow with the number of sources; the key is hashed with
// SipHash under a per-process random key, so an attacker cannot aim
// collisions at a victim's bucket.

// RRLConfig configures response rate limiting; a nil *RRLConfig is off.
type RRLConfig struct {
	// ResponsesPerSecond is the rate of positive and wildcard answers.
	ResponsesPerSecond int
	// Per-class rates; zero means ResponsesPerSecond.
	NXDomainsPerSecond int
	NoDataPerSecond    int
	ReferralsPerSecond int
	ErrorsPerSecond    int
	// Window is how far back debt is remembered; default 15s.
	Window time.Duration
	// Slip: every Slip-th limited reply is sent truncated (or BADCOOKIE);
	// 0 drops them all.
	Slip int
	// IPv4Prefix and IPv6Prefix group sources; default /24 and /56.
	IPv4Prefix, IPv6Prefix int
	// Exempt sources are never limited.
	Exempt []netip.Prefix
	// TableSize is the number of buckets; default 65536 (1.5 MiB).
	TableSize int
}

// RRL defaults.
const (
	DefaultRRLWindow     = 15 * time.Second
	DefaultRRLTableSize  = 65536
	DefaultClientPrefix4 = 24
	DefaultClientPrefix6 = 56
)

// RRL response classes.
const (
	rrlPositive = iota
	rrlWildcard
	rrlNXDomain
	rrlNoData
	rrlReferral
	rrlError
	nRRLClass
)

var rrlClassNames = [nRRLClass]string{"positive", "wildcard", "nxdomain", "nodata", "referral", "error"}

// RRL actions.
const (
	rrlPass = iota
	rrlSlip
	rrlDrop
)

const rrlWays = 4

type rrlEntry struct {
	key     uint64 // 0: empty
	last    uint32 // second of the last update
	balance int32
	slip    uint32
	_       uint32
}

type rrlTable struct {
	rate    [nRRLClass]int32
	window  int32 // seconds
	slip    uint32
	p4, p6  int
	exempt  []netip.Prefix
	k0, k1  uint64
	entries []rrlEntry
	sets    uint64 // a power of two
	locks   [256]sync.Mutex
	start   int64 // Unix ns
	now     func() time.Time
}

func newRRL(c *RRLConfig, now func() time.Time) *rrlTable {
	t := &rrlTable{slip: uint32(max(c.Slip, 0)), exempt: c.Exempt, now: now}
	t.p4, t.p6 = c.IPv4Prefix, c.IPv6Prefix
	if t.p4 <= 0 || t.p4 > 32 {
		t.p4 = DefaultClientPrefix4
	}
	if t.p6 <= 0 || t.p6 > 128 {
		t.p6 = DefaultClientPrefix6
	}
	r := int32(max(c.ResponsesPerSecond, 1))
	or := func(v int) int32 {
		if v > 0 {
			return int32(v)
		}
		return r
	}
	t.rate = [nRRLClass]int32{r, r, or(c.NXDomainsPerSecond), or(c.NoDataPerSecond), or(c.ReferralsPerSecond), or(c.ErrorsPerSecond)}
	w := c.Window
	if w <= 0 {
		w = DefaultRRLWindow
	}
	t.window = int32(max(w/time.Second, 1))
	size := c.TableSize
	if size <= 0 {
		size = DefaultRRLTableSize
	}
	sets := uint64(1)
	for sets*rrlWays < uint64(size) {
		sets <<= 1
	}
	t.sets = sets
	t.entries = make([]rrlEntry, sets*rrlWays)
	var seed [16]byte
	rand.Read(seed[:])
	t.k0, t.k1 = binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])
	if t.now == nil {
		t.now = time.Now
	}
	t.start = t.now().UnixNano()
	return t
}

// tableBytes is the memory the bucket table holds.
func (t *rrlTable) tableBytes() int { return len(t.entries) * 24 }

func (t *rrlTable) exempted(a netip.Addr) bool {
	for _, p := range t.exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// classify decides the class of the reply resp to q and what, besides the
// client prefix, its bucket is keyed by.
func classify(q *query, resp []byte) (class uint8, name string, qtype uint16) {
	rc := int(resp[3] & 0xF)
	an := binary.BigEndian.Uint16(resp[6:])
	aa := resp[2]&(flagAA>>8) != 0
	tc := resp[2]&(flagTC>>8) != 0
	apex := ""
	if q.zone != nil {
		apex = q.zone.apex
	}
	switch {
	case q.badCookie || (q.edns && q.version != 0):
		return rrlError, "", 0
	case rc == dns.RcodeNameError:
		return rrlNXDomain, apex, 0
	case rc != dns.RcodeSuccess:
		return rrlError, "", 0
	case an > 0 && q.wild != "":
		return rrlWildcard, q.wild, q.qtype
	case an > 0 || tc:
		return rrlPositive, "", q.qtype // the query name: q.key
	case !aa && q.cut != "":
		return rrlReferral, q.cut, 0
	default:
		return rrlNoData, apex, 0
	}
}

// check accounts one UDP reply and returns what to do with it.
func (t *rrlTable) check(q *query, resp []byte) uint8 {
	a := q.client
	if !a.IsValid() || t.exempted(a) {
		return rrlPass
	}
	class, name, qtype := classify(q, resp)
	q.rrlClass = class
	var b [1 + 16 + 1 + 2 + 256]byte
	if a.Is4() {
		b[0] = 4
		p, _ := a.Prefix(t.p4)
		v := p.Addr().As4()
		copy(b[1:], v[:])
	} else {
		b[0] = 6
		p, _ := a.Prefix(t.p6)
		v := p.Addr().As16()
		copy(b[1:], v[:])
	}
	b[17] = class
	binary.BigEndian.PutUint16(b[18:], qtype)
	n := 20
	if class == rrlPositive {
		n += copy(b[n:], q.key[:q.keyLen])
	} else {
		n += copy(b[n:], name)
	}
	h := siphash.Hash(t.k0, t.k1, b[:n]) | 1
	set := h & (t.sets - 1)
	ns := q.recv
	if ns == 0 {
		ns = t.now().UnixNano()
	}
	now := uint32((ns - t.start) / int64(time.Second))
	rate := t.rate[class]
	mu := &t.locks[set&255]
	mu.Lock()
	ways := t.entries[set*rrlWays : set*rrlWays+rrlWays]
	e := &ways[0]
	found := false
	for i := range ways {
		if ways[i].key == h {
			e, found = &ways[i], true
			break
		}
		if ways[i].key == 0 || ways[i].last < e.last {
			e = &ways[i]
		}
	}
	if !found {
		*e = rrlEntry{key: h, last: now, balance: rate}
	} else if el := now - e.last; el > 0 && now > e.last {
		b := int64(e.balance) + int64(el)*int64(rate)
		if b > int64(rate) {
			b = int64(rate)
		}
		e.balance, e.last = int32(b), now
	}
	e.balance--
	if floor := max(-int64(t.window)*int64(rate), math.MinInt32+1); int64(e.balance) < floor {
		e.balance = int32(floor)
	}
	if e.balance >= 0 {
		mu.Unlock()
		return rrlPass
	}
	e.slip++
	act := uint8(rrlDrop)
	if t.slip > 0 && e.slip%t.slip == 0 {
		act = rrlSlip
	}
	mu.Unlock()
	return act
}

// limit applies RRL to a UDP reply: it returns resp, a slipped reply
// written over it, or nil to drop it.
func (s *Server) limit(q *query, resp []byte, out []byte) []byte {
	act := s.rrl.check(q, resp)
	q.rrlAction = act
	switch act {
	case rrlPass:
		return resp
	case rrlSlip:
		if q.cookieLen > 0 && q.outCookieN != 0 {
			// Cookies are on and we could mint: the client can come
			// back with a cookie and never be limited again.
			return s.badCookie(q, out)
		}
		q.outCookieN = 0
		return s.emitBare(q, out, dns.RcodeSuccess, true)
	}
	return nil
}

// RRLTableBytes is the memory RRL's bucket table holds (fixed at New),
// or 0 with RRL off.
func (s *Server) RRLTableBytes() int {
	if s.rrl == nil {
		return 0
	}
	return s.rrl.tableBytes()
}
