package dnsserver

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/dchest/siphash"
	"github.com/miekg/dns"
)

// DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018):
//
//	server cookie = version(1) | reserved(3) | timestamp(4) | hash(8)
//	hash = SipHash-2-4(secret, client cookie | version | reserved | timestamp | client address)
//
// Every node of an anycast set is given the same secret, so a cookie one
// node handed out is good at every other node a route change may take the
// client to. The first secret mints, the others only verify, so a new
// secret can be rolled out fleet-wide before any node mints with it.
//
// A cookie is accepted when it was minted within the last hour and no more
// than five minutes in the future (RFC 9018 §4.3), and replaced by a fresh
// one once it is older than half an hour, or was made with a secret that
// no longer mints, or by another implementation (reserved bits set).
//
// A node whose clock is not synchronised (no RTC, NTP not answered yet)
// could mint timestamps every other node rejects, and could reject every
// good cookie. Until Config.ClockSynced reports true it therefore mints
// nothing: a query whose server cookie verifies (the hash alone; the time
// cannot be judged) is treated as valid and its cookie echoed unchanged;
// any other query is answered as a server without cookie support would
// answer it, without a COOKIE option and never with BADCOOKIE.

// Cookie states of a query.
const (
	cookieNone       = iota // no COOKIE option, or cookies off
	cookieClientOnly        // a client cookie only
	cookieInvalid           // a server cookie we did not make, or too old
	cookieValid             // a server cookie we (or the fleet) made
	nCookieStates
)

var cookieStateNames = [nCookieStates]string{"none", "client_only", "invalid", "valid"}

// Cookie timing (RFC 9018 §4.3).
const (
	CookieLifetime = time.Hour        // accepted while at most this old
	CookieFuture   = 5 * time.Minute  // and at most this far in the future
	CookieRenew    = 30 * time.Minute // a fresh one is sent once older
)

// CookieSecret is a 128-bit server secret.
type CookieSecret [16]byte

// ParseCookieSecret reads a secret written as 32 hex digits.
func ParseCookieSecret(s string) (CookieSecret, error) {
	var k CookieSecret
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("cookie secret %q: want 32 hex digits (128 bits)", s)
	}
	copy(k[:], b)
	return k, nil
}

// NewCookieSecret returns a random secret.
func NewCookieSecret() CookieSecret {
	var k CookieSecret
	rand.Read(k[:])
	return k
}

func validCookieLen(l int) bool { return l == 8 || (l >= 16 && l <= 40) }

// cookieKey is a secret as SipHash takes it.
type cookieKey struct{ k0, k1 uint64 }

func keyOf(s CookieSecret) cookieKey {
	return cookieKey{binary.LittleEndian.Uint64(s[:8]), binary.LittleEndian.Uint64(s[8:])}
}

// cookieJar verifies and mints server cookies.
type cookieJar struct {
	keys    []cookieKey // keys[0] mints
	require bool        // BADCOOKIE to UDP queries without a valid server cookie
	synced  func() bool
}

func newCookieJar(cfg *Config) *cookieJar {
	j := &cookieJar{require: cfg.RequireCookieUDP, synced: cfg.ClockSynced}
	secrets := cfg.CookieSecrets
	if len(secrets) == 0 {
		secrets = []CookieSecret{NewCookieSecret()}
		cfg.Logger.Warn("dns: cookies: no dns.cookie_secrets configured, using a random secret; " +
			"an anycast set needs one secret shared by every node, or clients that move between nodes get BADCOOKIE")
	}
	for _, s := range secrets {
		j.keys = append(j.keys, keyOf(s))
	}
	return j
}

// serverHash is the RFC 9018 hash over the client cookie, the first eight
// octets of the server cookie (version, reserved, timestamp) and the
// client's address.
func serverHash(k cookieKey, client, head []byte, addr netip.Addr) uint64 {
	var b [8 + 8 + 16]byte
	copy(b[:8], client)
	copy(b[8:16], head)
	n := 16
	if addr.Is4() {
		a := addr.As4()
		n += copy(b[n:], a[:])
	} else if addr.IsValid() {
		a := addr.As16()
		n += copy(b[n:], a[:])
	}
	return siphash.Hash(k.k0, k.k1, b[:n])
}

// mint writes a fresh version 1 server cookie for client cookie cc into
// out[0:16].
func mint(k cookieKey, cc []byte, addr netip.Addr, now uint32, out []byte) {
	out[0], out[1], out[2], out[3] = 1, 0, 0, 0
	binary.BigEndian.PutUint32(out[4:], now)
	binary.LittleEndian.PutUint64(out[8:], serverHash(k, cc, out[:8], addr))
}

// process checks q's COOKIE option and sets what the reply carries. It
// reports whether the reply must be BADCOOKIE instead of an answer.
func (j *cookieJar) process(q *query, tcp bool) bool {
	if q.cookieLen == 0 {
		return false
	}
	msg := q.msg
	cc := msg[q.cookieOff : q.cookieOff+8]
	ns := q.recv // set from Config.Now when that is given
	if ns == 0 {
		ns = time.Now().UnixNano()
	}
	t := uint32(ns / int64(time.Second))
	synced := j.synced == nil || j.synced()
	copy(q.outCookie[:8], cc)
	q.cookieState = cookieClientOnly
	renew := true
	if q.cookieLen > 8 {
		q.cookieState = cookieInvalid
		sc := msg[q.cookieOff+8 : q.cookieOff+q.cookieLen]
		if len(sc) == 16 && sc[0] == 1 {
			got := binary.LittleEndian.Uint64(sc[8:])
			for i, k := range j.keys {
				if serverHash(k, cc, sc[:8], q.client) != got {
					continue
				}
				// Serial arithmetic: the timestamp wraps (RFC 9018 §4.3).
				age := int64(int32(t - binary.BigEndian.Uint32(sc[4:])))
				if !synced || (age <= int64(CookieLifetime/time.Second) && -age <= int64(CookieFuture/time.Second)) {
					q.cookieState = cookieValid
					renew = i != 0 || age > int64(CookieRenew/time.Second) || sc[1]|sc[2]|sc[3] != 0
					copy(q.outCookie[8:], sc)
				}
				break
			}
		}
	}
	switch {
	case q.cookieState == cookieValid && (!renew || !synced):
		q.outCookieN = 24 // echo the server cookie we were sent
	case synced:
		mint(j.keys[0], cc, q.client, t, q.outCookie[8:])
		q.outCookieN = 24
	default:
		// Unsynchronised: mint nothing other nodes might reject.
		q.outCookieN = 0
		return false
	}
	if tcp {
		return false // TCP proves the address; no BADCOOKIE (RFC 7873 §5.2.3)
	}
	return q.cookieState == cookieInvalid || (q.cookieState == cookieClientOnly && j.require)
}

// emitBare writes a reply with no records: the header, the question and
// the OPT record (with the cookie, when there is one). It is BADCOOKIE,
// or the truncated reply RRL slips, and allocates nothing.
func (s *Server) emitBare(q *query, out []byte, rcode int, tc bool) []byte {
	out = append(out[:0], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	q.header(out, false, tc, rcode)
	if q.qend > 12 {
		out[5] = 1
		out = append(out, q.msg[12:q.qend]...)
	}
	if q.edns {
		out = appendOPT(out, uint16(s.cfg.MaxUDPSize), rcode, q.do, "", q.cookieOut())
		out[11] = 1
	}
	return out
}

// badCookie writes the BADCOOKIE reply: OPT and a fresh cookie always.
func (s *Server) badCookie(q *query, out []byte) []byte {
	q.badCookie = true
	return s.emitBare(q, out, dns.RcodeBadCookie, false)
}
