package xfr

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TSIG (RFC 8945) is done here rather than with miekg/dns's TsigGenerate
// and TsigVerify because a transfer is a stream: the MAC of each response
// chains to the one before it, and a primary may leave up to 99 messages
// in a row unsigned (NSD signs every 96th), which miekg/dns rejects.

// Fudge is the clock skew allowed, and announced, in TSIG records (RFC
// 8945 §10 recommends 300 s).
const Fudge = 300

// maxUnsigned is how many unsigned messages may follow each other in a
// signed response stream (RFC 8945 §5.3.1).
const maxUnsigned = 99

// TSIG error codes carried in the TSIG record (RFC 8945 §3).
const (
	tsigBadSig   = dns.RcodeBadSig
	tsigBadKey   = dns.RcodeBadKey
	tsigBadTime  = dns.RcodeBadTime
	tsigBadTrunc = dns.RcodeBadTrunc
)

// Key is a TSIG key shared with a peer.
type Key struct {
	Name      string // canonical key name, e.g. "xfr-key."
	Algorithm string // canonical algorithm name, e.g. "hmac-sha256."
	Secret    []byte
}

// NewKey makes a key from its name, algorithm ("hmac-sha256" or
// "hmac-sha256.") and base64 secret, as operators write them for BIND,
// Knot and NSD.
func NewKey(name, algorithm, secret string) (*Key, error) {
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return nil, fmt.Errorf("TSIG key name %q is not a domain name", name)
	}
	alg := dns.CanonicalName(algorithm)
	if hashFor(alg) == nil {
		return nil, fmt.Errorf("TSIG key %s: algorithm %q is not one of %s", name, algorithm, strings.Join(Algorithms(), ", "))
	}
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return nil, fmt.Errorf("TSIG key %s: secret is not base64: %v", name, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("TSIG key %s: empty secret", name)
	}
	return &Key{Name: dns.CanonicalName(name), Algorithm: alg, Secret: raw}, nil
}

// Algorithms lists the TSIG algorithms supported, without trailing dots.
func Algorithms() []string {
	return []string{"hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"}
}

func hashFor(alg string) func() hash.Hash {
	switch alg {
	case dns.HmacSHA1:
		return sha1.New
	case dns.HmacSHA224:
		return sha256.New224
	case dns.HmacSHA256:
		return sha256.New
	case dns.HmacSHA384:
		return sha512.New384
	case dns.HmacSHA512:
		return sha512.New
	}
	return nil
}

func (k *Key) newMAC() hash.Hash { return hmac.New(hashFor(k.Algorithm), k.Secret) }

// Keyring finds keys by canonical name.
type Keyring map[string]*Key

// tsigRR is a TSIG record found at the end of a raw message.
type tsigRR struct {
	start      int // offset of the record in the message
	keyName    string
	ttl        uint32 // MUST be 0 (RFC 8945 §4.2), but the MAC covers what was sent
	algorithm  string
	timeSigned uint64
	fudge      uint16
	mac        []byte
	origID     uint16
	errCode    uint16
	other      []byte
}

// TSIGError is a TSIG problem with the code the peer is told (BADSIG,
// BADKEY, BADTIME) or was told by the peer.
type TSIGError struct {
	Code   uint16
	Detail string
}

func (e *TSIGError) Error() string {
	return fmt.Sprintf("TSIG %s: %s", dns.RcodeToString[int(e.Code)], e.Detail)
}

// errNoTSIG: the message carries no TSIG record.
var errNoTSIG = errors.New("message is not TSIG-signed")

// findTSIG returns the TSIG record that ends msg, nil if there is none.
func findTSIG(msg []byte) (*tsigRR, error) {
	if len(msg) < 12 {
		return nil, errShort
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	if ar == 0 {
		return nil, nil
	}
	off := 12
	var err error
	for range qd {
		if off, err = skipName(msg, off); err != nil {
			return nil, err
		}
		off += 4
	}
	for i := range rrs + ar - 1 {
		rr := off
		if off, err = skipRR(msg, off); err != nil {
			return nil, err
		}
		// A TSIG anywhere but last is a format error (RFC 8945 §5.1);
		// verifying the last one would sign over the other.
		if i >= rrs && rrType(msg, rr) == dns.TypeTSIG {
			return nil, errors.New("TSIG record is not the last thing in the message")
		}
	}
	start := off
	name, off, err := dns.UnpackDomainName(msg, off)
	if err != nil {
		return nil, err
	}
	if off+10 > len(msg) {
		return nil, errShort
	}
	if binary.BigEndian.Uint16(msg[off:]) != dns.TypeTSIG {
		return nil, nil
	}
	if c := binary.BigEndian.Uint16(msg[off+2:]); c != dns.ClassANY {
		return nil, fmt.Errorf("TSIG record of class %d, not ANY", c)
	}
	ttl := binary.BigEndian.Uint32(msg[off+4:])
	rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
	off += 10
	end := off + rdlen
	if end != len(msg) {
		return nil, errors.New("TSIG record is not the last thing in the message")
	}
	t := &tsigRR{start: start, keyName: dns.CanonicalName(name), ttl: ttl}
	alg, off, err := dns.UnpackDomainName(msg[:end], off)
	if err != nil {
		return nil, err
	}
	t.algorithm = dns.CanonicalName(alg)
	if off+10 > end {
		return nil, errShort
	}
	t.timeSigned = uint64(binary.BigEndian.Uint16(msg[off:]))<<32 | uint64(binary.BigEndian.Uint32(msg[off+2:]))
	t.fudge = binary.BigEndian.Uint16(msg[off+6:])
	macLen := int(binary.BigEndian.Uint16(msg[off+8:]))
	off += 10
	if off+macLen+6 > end {
		return nil, errShort
	}
	t.mac = msg[off : off+macLen]
	off += macLen
	t.origID = binary.BigEndian.Uint16(msg[off:])
	t.errCode = binary.BigEndian.Uint16(msg[off+2:])
	otherLen := int(binary.BigEndian.Uint16(msg[off+4:]))
	off += 6
	if off+otherLen != end {
		return nil, errors.New("TSIG record: bad other data length")
	}
	t.other = msg[off:end]
	return t, nil
}

var errShort = errors.New("message too short")

// skipName returns the offset just after the (possibly compressed) name
// at off.
func skipName(msg []byte, off int) (int, error) {
	for {
		if off >= len(msg) {
			return 0, errShort
		}
		c := int(msg[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				return off + 1, nil
			}
			off += c + 1
		case 0xC0:
			return off + 2, nil
		default:
			return 0, errors.New("bad label type")
		}
	}
}

// rrType is the type of the record at off, which skipRR has passed.
func rrType(msg []byte, off int) uint16 {
	off, _ = skipName(msg, off)
	return binary.BigEndian.Uint16(msg[off:])
}

// skipRR returns the offset just after the record at off.
func skipRR(msg []byte, off int) (int, error) {
	off, err := skipName(msg, off)
	if err != nil {
		return 0, err
	}
	if off+10 > len(msg) {
		return 0, errShort
	}
	off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
	if off > len(msg) {
		return 0, errShort
	}
	return off, nil
}

// writePrior feeds a previous MAC (the request's, or the last signed
// response's) into h, length first.
func writePrior(h hash.Hash, prior []byte) {
	if prior == nil {
		return
	}
	var l [2]byte
	binary.BigEndian.PutUint16(l[:], uint16(len(prior)))
	h.Write(l[:])
	h.Write(prior)
}

// writeVariables feeds the TSIG variables (RFC 8945 §4.3.3) into h; with
// timersOnly, just the time signed and fudge (§4.3.1, later messages of a
// stream).
func writeVariables(h hash.Hash, keyName string, ttl uint32, alg string, timeSigned uint64, fudge, errCode uint16, other []byte, timersOnly bool) {
	var b []byte
	if !timersOnly {
		b = appendName(b, keyName)
		b = binary.BigEndian.AppendUint16(b, dns.ClassANY)
		b = binary.BigEndian.AppendUint32(b, ttl)
		b = appendName(b, alg)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(timeSigned>>32))
	b = binary.BigEndian.AppendUint32(b, uint32(timeSigned))
	b = binary.BigEndian.AppendUint16(b, fudge)
	if !timersOnly {
		b = binary.BigEndian.AppendUint16(b, errCode)
		b = binary.BigEndian.AppendUint16(b, uint16(len(other)))
		b = append(b, other...)
	}
	h.Write(b)
}

// appendName appends a name in canonical (lower-case, uncompressed) wire form.
func appendName(b []byte, name string) []byte {
	var buf [256]byte
	n, err := dns.PackDomainName(dns.CanonicalName(name), buf[:], 0, nil, false)
	if err != nil {
		return append(b, 0)
	}
	return append(b, buf[:n]...)
}

// writeStripped feeds msg without its TSIG record into h, with the
// original ID and the additional count the signer saw.
func writeStripped(h hash.Hash, msg []byte, t *tsigRR) {
	var hdr [12]byte
	copy(hdr[:], msg[:12])
	binary.BigEndian.PutUint16(hdr[0:], t.origID)
	binary.BigEndian.PutUint16(hdr[10:], binary.BigEndian.Uint16(msg[10:])-1)
	h.Write(hdr[:])
	h.Write(msg[12:t.start])
}

// sign appends a TSIG record to msg (a whole message without one) and
// returns the message and the MAC. prior is the request MAC when signing
// a response, the previous response's MAC with timersOnly, nil for a
// request. With errCode BADKEY or BADSIG the record carries no MAC (RFC
// 8945 §5.3.2).
func (k *Key) sign(msg, prior []byte, timersOnly bool, now time.Time, errCode uint16, other []byte) ([]byte, []byte) {
	ts := uint64(now.Unix())
	var mac []byte
	if errCode != tsigBadKey && errCode != tsigBadSig {
		h := k.newMAC()
		writePrior(h, prior)
		h.Write(msg)
		writeVariables(h, k.Name, 0, k.Algorithm, ts, Fudge, errCode, other, timersOnly)
		mac = h.Sum(nil)
	} else {
		ts = 0
	}
	id := binary.BigEndian.Uint16(msg)
	out := appendName(msg, k.Name)
	out = binary.BigEndian.AppendUint16(out, dns.TypeTSIG)
	out = binary.BigEndian.AppendUint16(out, dns.ClassANY)
	out = binary.BigEndian.AppendUint32(out, 0)
	rdStart := len(out)
	out = append(out, 0, 0)
	out = appendName(out, k.Algorithm)
	out = binary.BigEndian.AppendUint16(out, uint16(ts>>32))
	out = binary.BigEndian.AppendUint32(out, uint32(ts))
	out = binary.BigEndian.AppendUint16(out, Fudge)
	out = binary.BigEndian.AppendUint16(out, uint16(len(mac)))
	out = append(out, mac...)
	out = binary.BigEndian.AppendUint16(out, id)
	out = binary.BigEndian.AppendUint16(out, errCode)
	out = binary.BigEndian.AppendUint16(out, uint16(len(other)))
	out = append(out, other...)
	binary.BigEndian.PutUint16(out[rdStart:], uint16(len(out)-rdStart-2))
	binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])+1)
	return out, mac
}

// SignRequest signs a query, NOTIFY or transfer request; the MAC it
// returns starts the verification of the response.
func (k *Key) SignRequest(msg []byte, now time.Time) ([]byte, []byte) {
	return k.sign(msg, nil, false, now, 0, nil)
}

// checkMAC compares a computed MAC with the one received. A truncated MAC
// (RFC 8945 §5.2.2.1) is accepted down to half the hash or 10 bytes.
func checkMAC(want, got []byte) error {
	if len(got) > len(want) {
		return &TSIGError{tsigBadSig, "MAC longer than the algorithm's"}
	}
	if len(got) < len(want) && (len(got) < 10 || len(got) < len(want)/2) {
		return &TSIGError{tsigBadTrunc, "MAC truncated too far"}
	}
	if !hmac.Equal(want[:len(got)], got) {
		return &TSIGError{tsigBadSig, "MAC does not match (wrong secret?)"}
	}
	return nil
}

func checkTime(t *tsigRR, now time.Time) error {
	n := now.Unix()
	d := n - int64(t.timeSigned)
	if d < 0 {
		d = -d
	}
	if d > int64(t.fudge) {
		return &TSIGError{tsigBadTime, fmt.Sprintf("signed at %d, now %d, fudge %d", t.timeSigned, n, t.fudge)}
	}
	return nil
}

// verifyRequest checks a signed request against the keyring. It returns
// the key and TSIG found; with an error, the key (if known) is what the
// reply is signed with.
func verifyRequest(msg []byte, keys Keyring, now time.Time) (*Key, *tsigRR, error) {
	t, err := findTSIG(msg)
	if err != nil {
		return nil, nil, err
	}
	if t == nil {
		return nil, nil, errNoTSIG
	}
	k := keys[t.keyName]
	if k == nil || k.Algorithm != t.algorithm {
		return nil, t, &TSIGError{tsigBadKey, fmt.Sprintf("unknown key %s (%s)", t.keyName, strings.TrimSuffix(t.algorithm, "."))}
	}
	h := k.newMAC()
	writeStripped(h, msg, t)
	writeVariables(h, t.keyName, t.ttl, t.algorithm, t.timeSigned, t.fudge, t.errCode, t.other, false)
	if err := checkMAC(h.Sum(nil), t.mac); err != nil {
		return k, t, err
	}
	if err := checkTime(t, now); err != nil {
		return k, t, err
	}
	return k, t, nil
}

// verifier checks the TSIG of each message of a response stream.
type verifier struct {
	key      *Key
	prior    []byte    // MAC of the request, then of the last signed response
	first    bool      // the next signed message is the first: all variables
	h        hash.Hash // digest of the messages since the last signed one
	unsigned int
	now      func() time.Time
}

func newVerifier(k *Key, requestMAC []byte) *verifier {
	return &verifier{key: k, prior: requestMAC, first: true, now: time.Now}
}

// check verifies one message of the stream, in order.
func (v *verifier) check(msg []byte) error {
	t, err := findTSIG(msg)
	if err != nil {
		return fmt.Errorf("TSIG: %w", err)
	}
	if v.h == nil {
		v.h = v.key.newMAC()
		writePrior(v.h, v.prior)
	}
	if t == nil {
		if v.first {
			return &TSIGError{tsigBadSig, "the response is not signed"}
		}
		if v.unsigned++; v.unsigned > maxUnsigned {
			return &TSIGError{tsigBadSig, fmt.Sprintf("more than %d unsigned messages in a row", maxUnsigned)}
		}
		v.h.Write(msg)
		return nil
	}
	if t.keyName != v.key.Name || t.algorithm != v.key.Algorithm {
		return &TSIGError{tsigBadKey, fmt.Sprintf("response signed with key %s (%s), not %s", t.keyName, t.algorithm, v.key.Name)}
	}
	if t.errCode != 0 {
		return &TSIGError{t.errCode, "the peer rejected our signature"}
	}
	writeStripped(v.h, msg, t)
	writeVariables(v.h, t.keyName, t.ttl, t.algorithm, t.timeSigned, t.fudge, t.errCode, t.other, !v.first)
	if err := checkMAC(v.h.Sum(nil), t.mac); err != nil {
		return err
	}
	if err := checkTime(t, v.now()); err != nil {
		return err
	}
	v.prior = append(v.prior[:0:0], t.mac...)
	v.first, v.h, v.unsigned = false, nil, 0
	return nil
}

// done reports an error if the stream ended on unsigned messages: the
// last message must be signed, or its tail could have been forged.
func (v *verifier) done() error {
	if v.first || v.h != nil {
		return &TSIGError{tsigBadSig, "the last message of the response is not signed"}
	}
	return nil
}

// responseSigner signs each message of a response stream in order.
type responseSigner struct {
	key   *Key
	prior []byte
	first bool
	now   func() time.Time
}

func newResponseSigner(k *Key, requestMAC []byte) *responseSigner {
	return &responseSigner{key: k, prior: requestMAC, first: true, now: time.Now}
}

func (s *responseSigner) sign(msg []byte) []byte {
	out, mac := s.key.sign(msg, s.prior, !s.first, s.now(), 0, nil)
	s.prior, s.first = mac, false
	return out
}

// tsigErrorReply turns a request whose TSIG failed into the NOTAUTH
// reply RFC 8945 §5.2 asks for: the TSIG error in the record, signed only
// for BADTIME (with our time in the other data), unsigned otherwise.
func tsigErrorReply(reply []byte, k *Key, t *tsigRR, err *TSIGError, now time.Time) []byte {
	binary.BigEndian.PutUint16(reply[2:], binary.BigEndian.Uint16(reply[2:])&^0xF|dns.RcodeNotAuth)
	if k == nil {
		// An unknown key: echo its name and algorithm, no MAC.
		k = &Key{Name: t.keyName, Algorithm: t.algorithm}
	}
	if err.Code == tsigBadTime {
		other := make([]byte, 6)
		ts := uint64(now.Unix())
		binary.BigEndian.PutUint16(other, uint16(ts>>32))
		binary.BigEndian.PutUint32(other[2:], uint32(ts))
		out, _ := k.sign(reply, t.mac, false, now, tsigBadTime, other)
		return out
	}
	out, _ := k.sign(reply, nil, false, now, err.Code, nil)
	return out
}
