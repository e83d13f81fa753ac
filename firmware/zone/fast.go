package zone

import (
	"bufio"
	"io"
	"math"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// fastReader reads the common shapes of master-file entries itself, one
// line at a time, instead of through miekg/dns's lexer, which costs more
// CPU per record than the rest of an import together. It understands
// only what it is certain of: single-line records of types A, AAAA, NS,
// CNAME, PTR, MX, TXT (plain quoted strings) and SOA with an owner (or a
// blank, or @), a decimal TTL and class IN in either order, names without
// escapes, comments, blank lines, and $ORIGIN and $TTL with plain
// arguments. For anything else it hands back the entry (next reports
// fastEntry) or the rest of the input (fastRest) to be parsed by
// ZoneParser from the state it has kept (origin, default TTL, last
// owner), so the records and errors are those ZoneParser gives.
//
// The records it returns are reused by the next call: a caller that keeps
// one must copy it.
type fastReader struct {
	br     *bufio.Reader
	origin string
	defTTL uint32
	// byDirective: defTTL came from $TTL, so an explicit TTL on a record
	// does not become the default (as in ZoneParser).
	byDirective bool
	owner       string // the last record's owner, "" before the first
	ownerTok    []byte // the text owner was made from, and its origin
	ownerOrig   string

	line  int    // line number of the next line read
	start int    // line on which the entry just returned starts
	buf   []byte // the entry just returned (fastEntry, fastRest)
	eof   bool

	toks [16]token

	a    dns.A
	aaaa dns.AAAA
	ns   dns.NS
	cn   dns.CNAME
	ptr  dns.PTR
	mx   dns.MX
	txt  dns.TXT
	soa  dns.SOA
	ip4  [16]byte
	ip6  [16]byte
	strs []string
}

type token struct {
	s, e   int // offsets into the line; quotes included
	quoted bool
}

type fastResult int

const (
	fastRecord fastResult = iota // a record, from next's first result
	fastEntry                    // buf holds one entry ZoneParser must read
	fastRest                     // buf and the rest of br must go to ZoneParser
	fastEOF
)

func newFastReader(r io.Reader, origin string) *fastReader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 64<<10 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &fastReader{br: br, origin: origin, defTTL: missingTTL, line: 1}
}

// readLine reads the next line, with its newline, into f.buf.
func (f *fastReader) readLine() bool {
	f.buf = f.buf[:0]
	if f.eof {
		return false
	}
	for {
		b, err := f.br.ReadSlice('\n')
		f.buf = append(f.buf, b...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			f.eof = true
			return len(f.buf) > 0
		}
		return true
	}
}

// next returns the next record, or says what ZoneParser must read.
func (f *fastReader) next() (dns.RR, fastResult) {
	for f.readLine() {
		f.start = f.line
		f.line++
		rr, res, blank := f.parseLine(f.buf)
		if blank {
			continue
		}
		if res == fastEntry {
			return nil, f.entry()
		}
		return rr, res
	}
	return nil, fastEOF
}

// entry completes the entry begun by the line in f.buf: it may continue
// over more lines in parentheses. The extent found here is only a guess
// at ZoneParser's; the caller checks that ZoneParser read exactly one
// record from it and sends the rest of the input otherwise.
func (f *fastReader) entry() fastResult {
	if len(f.buf) > 0 && f.buf[0] == '$' {
		return fastRest
	}
	depth, quote, esc, odd := 0, false, false, false
	scan := func(from int) {
		comment := false
		for _, c := range f.buf[from:] {
			switch {
			case c == '\n':
				// A newline escaped or in quotes: ZoneParser decides.
				odd = odd || quote || esc
				comment = false
				esc = false
			case comment:
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case quote:
				if c == '"' {
					quote = false
				}
			case c == '"':
				quote = true
			case c == ';':
				comment = true
			case c == '(':
				depth++
			case c == ')':
				depth--
			}
		}
	}
	scan(0)
	for depth > 0 && !odd {
		if f.eof {
			return fastRest
		}
		n := len(f.buf)
		b, err := f.br.ReadSlice('\n')
		f.buf = append(f.buf, b...)
		for err == bufio.ErrBufferFull {
			b, err = f.br.ReadSlice('\n')
			f.buf = append(f.buf, b...)
		}
		if err != nil {
			f.eof = true
		}
		if len(f.buf) == n {
			return fastRest
		}
		f.line++
		scan(n)
	}
	if depth != 0 || odd || quote || esc {
		return fastRest
	}
	return fastEntry
}

// tokenize splits a line into tokens up to a comment. ok is false for
// what the fast path leaves to ZoneParser: escapes, parentheses, control
// and non-ASCII bytes, quotes not standing alone as a token.
func (f *fastReader) tokenize(line []byte) (toks []token, ok bool) {
	toks = f.toks[:0]
	i, n := 0, len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
	}
	for i < n {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			i++
			continue
		case c == ';':
			return toks, true
		}
		if len(toks) == cap(toks) {
			return nil, false
		}
		s := i
		if c == '"' {
			i++
			for i < n && line[i] != '"' {
				if c := line[i]; c == '\\' || c < 0x20 || c > 0x7e {
					return nil, false
				}
				i++
			}
			if i >= n || i == s+1 {
				return nil, false
			}
			i++
			if i < n && line[i] != ' ' && line[i] != '\t' {
				return nil, false
			}
			toks = append(toks, token{s, i, true})
			continue
		}
		for i < n {
			c := line[i]
			if c == ' ' || c == '\t' || c == ';' {
				break
			}
			if c <= 0x20 || c > 0x7e || c == '\\' || c == '"' || c == '(' || c == ')' {
				return nil, false
			}
			i++
		}
		toks = append(toks, token{s, i, false})
	}
	return toks, true
}

// parseLine reads one line. blank is true for a line with nothing but
// spaces and a comment, and for $ORIGIN and $TTL, which it applies.
func (f *fastReader) parseLine(line []byte) (rr dns.RR, res fastResult, blank bool) {
	toks, ok := f.tokenize(line)
	if !ok {
		return nil, fastEntry, false
	}
	if len(toks) == 0 {
		return nil, 0, true
	}
	tok := func(i int) []byte { return line[toks[i].s:toks[i].e] }
	owner := f.owner
	rest := toks
	if line[0] == '$' {
		d := tok(0)
		switch {
		case len(toks) == 2 && upperIs(d, "$TTL"):
			ttl, ok := decimal(tok(1), math.MaxUint32)
			if !ok {
				return nil, fastRest, false
			}
			f.defTTL, f.byDirective = uint32(ttl), true
			return nil, 0, true
		case len(toks) == 2 && upperIs(d, "$ORIGIN"):
			if _, isType := dns.StringToType[strings.ToUpper(string(tok(1)))]; isType {
				// ZoneParser's lexer takes a bare type mnemonic
				// ("$ORIGIN A") for a type and refuses it as the
				// origin; it says so, with its own words.
				return nil, fastRest, false
			}
			o, ok := f.name(tok(1), nil)
			if !ok {
				return nil, fastRest, false
			}
			f.origin = o
			return nil, 0, true
		}
		return nil, fastRest, false
	}
	if line[0] != ' ' && line[0] != '\t' {
		t := tok(0)
		if f.owner != "" && f.origin == f.ownerOrig && string(t) == string(f.ownerTok) {
			// Same text as before (and same origin): same name.
		} else {
			o, ok := f.name(t, nil)
			if !ok {
				return nil, fastEntry, false
			}
			owner = o
		}
		rest = toks[1:]
	} else if owner == "" {
		return nil, fastRest, false
	}
	ttl, hasTTL, hasClass := f.defTTL, false, false
	for len(rest) > 0 {
		t := line[rest[0].s:rest[0].e]
		if rest[0].quoted {
			return nil, fastEntry, false
		}
		if upperIs(t, "IN") {
			if hasClass {
				return nil, fastEntry, false
			}
			hasClass = true
		} else if t[0] >= '0' && t[0] <= '9' {
			v, ok := decimal(t, math.MaxUint32)
			if !ok || hasTTL {
				return nil, fastEntry, false
			}
			ttl, hasTTL = uint32(v), true
		} else {
			break
		}
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return nil, fastEntry, false
	}
	typ := line[rest[0].s:rest[0].e]
	rd := rest[1:]
	for _, t := range rd {
		if t.quoted && !upperIs(typ, "TXT") {
			return nil, fastEntry, false
		}
	}
	rt := func(i int) []byte { return line[rd[i].s:rd[i].e] }
	hdr := dns.RR_Header{Name: owner, Class: dns.ClassINET, Ttl: ttl}
	switch {
	case upperIs(typ, "A"):
		if len(rd) != 1 || !ipv4(rt(0), &f.ip4) {
			return nil, fastEntry, false
		}
		hdr.Rrtype = dns.TypeA
		f.a = dns.A{Hdr: hdr, A: f.ip4[:]}
		rr = &f.a
	case upperIs(typ, "AAAA"):
		if len(rd) != 1 || !ipv6(rt(0), &f.ip6) {
			return nil, fastEntry, false
		}
		hdr.Rrtype = dns.TypeAAAA
		f.aaaa = dns.AAAA{Hdr: hdr, AAAA: f.ip6[:]}
		rr = &f.aaaa
	case upperIs(typ, "NS"), upperIs(typ, "CNAME"), upperIs(typ, "PTR"):
		if len(rd) != 1 {
			return nil, fastEntry, false
		}
		target, ok := f.name(rt(0), nil)
		if !ok {
			return nil, fastEntry, false
		}
		switch len(typ) {
		case 2:
			hdr.Rrtype = dns.TypeNS
			f.ns = dns.NS{Hdr: hdr, Ns: target}
			rr = &f.ns
		case 5:
			hdr.Rrtype = dns.TypeCNAME
			f.cn = dns.CNAME{Hdr: hdr, Target: target}
			rr = &f.cn
		default:
			hdr.Rrtype = dns.TypePTR
			f.ptr = dns.PTR{Hdr: hdr, Ptr: target}
			rr = &f.ptr
		}
	case upperIs(typ, "MX"):
		if len(rd) != 2 {
			return nil, fastEntry, false
		}
		pref, ok := decimal(rt(0), math.MaxUint16)
		if !ok {
			return nil, fastEntry, false
		}
		mx, ok := f.name(rt(1), nil)
		if !ok {
			return nil, fastEntry, false
		}
		hdr.Rrtype = dns.TypeMX
		f.mx = dns.MX{Hdr: hdr, Preference: uint16(pref), Mx: mx}
		rr = &f.mx
	case upperIs(typ, "TXT"):
		if len(rd) == 0 {
			return nil, fastEntry, false
		}
		f.strs = f.strs[:0]
		for i, t := range rd {
			if !t.quoted || t.e-t.s-2 > 255 {
				return nil, fastEntry, false
			}
			f.strs = append(f.strs, string(line[rd[i].s+1:rd[i].e-1]))
		}
		hdr.Rrtype = dns.TypeTXT
		f.txt = dns.TXT{Hdr: hdr, Txt: f.strs}
		rr = &f.txt
	case upperIs(typ, "SOA"):
		if len(rd) != 7 {
			return nil, fastEntry, false
		}
		ns, ok1 := f.name(rt(0), nil)
		mbox, ok2 := f.name(rt(1), nil)
		if !ok1 || !ok2 {
			return nil, fastEntry, false
		}
		var v [5]uint32
		for i := range v {
			x, ok := decimal(rt(2+i), math.MaxUint32)
			if !ok {
				return nil, fastEntry, false
			}
			v[i] = uint32(x)
		}
		hdr.Rrtype = dns.TypeSOA
		f.soa = dns.SOA{Hdr: hdr, Ns: ns, Mbox: mbox, Serial: v[0], Refresh: v[1], Retry: v[2], Expire: v[3], Minttl: v[4]}
		rr = &f.soa
	default:
		return nil, fastEntry, false
	}
	if len(rest) < len(toks) && owner != f.owner {
		f.owner = owner
		f.ownerTok = append(f.ownerTok[:0], tok(0)...)
		f.ownerOrig = f.origin
	}
	f.record(rr)
	return rr, fastRecord, false
}

// record keeps the state ZoneParser keeps from a record: its owner and,
// unless $TTL set it, its TTL as the default.
func (f *fastReader) record(rr dns.RR) {
	h := rr.Header()
	if h.Name != f.owner {
		f.owner = h.Name
		f.ownerTok = f.ownerTok[:0]
		f.ownerOrig = ""
	}
	if !f.byDirective {
		f.defTTL = h.Ttl
	}
}

// name makes a name absolute as ZoneParser does, for names of letters,
// digits, '-', '_', '*' and '/' only, and checks its lengths.
func (f *fastReader) name(t []byte, _ []byte) (string, bool) {
	if len(t) == 1 && t[0] == '@' {
		return f.origin, true
	}
	if len(t) == 1 && t[0] == '.' {
		return ".", true
	}
	label := 0
	for _, c := range t {
		switch {
		case c == '.':
			if label == 0 {
				return "", false
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '*', c == '/':
		default:
			return "", false
		}
		label++
		if label > 63 {
			return "", false
		}
	}
	if t[len(t)-1] == '.' {
		if len(t)+1 > 255 {
			return "", false
		}
		return string(t), true
	}
	// Relative: the wire length of name + origin.
	n := len(t) + 1 + len(f.origin)
	if f.origin == "." {
		n = len(t) + 2
	}
	if n > 255 {
		return "", false
	}
	if f.origin == "." {
		return string(t) + ".", true
	}
	return string(t) + "." + f.origin, true
}

// upperIs reports whether t is s (upper case) in any case.
func upperIs(t []byte, s string) bool {
	if len(t) != len(s) {
		return false
	}
	for i := range t {
		c := t[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// decimal reads a plain decimal number of at most 10 digits up to max.
func decimal(t []byte, max uint64) (uint64, bool) {
	if len(t) == 0 || len(t) > 10 {
		return 0, false
	}
	var v uint64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, v <= max
}

// ipv4 reads a dotted quad as net.ParseIP does (no leading zeros) into
// the 16-byte form it returns.
func ipv4(t []byte, ip *[16]byte) bool {
	*ip = [16]byte{10: 0xff, 11: 0xff}
	part, digits := 12, 0
	v := 0
	for i, c := range t {
		switch {
		case c >= '0' && c <= '9':
			if digits == 1 && v == 0 {
				return false
			}
			v = v*10 + int(c-'0')
			digits++
			if v > 255 {
				return false
			}
		case c == '.' && digits > 0 && part < 15 && i < len(t)-1:
			ip[part] = byte(v)
			part++
			v, digits = 0, 0
		default:
			return false
		}
	}
	if part != 15 || digits == 0 {
		return false
	}
	ip[15] = byte(v)
	return true
}

// ipv6 reads an IPv6 address as ZoneParser does (net.ParseIP, which
// takes what netip.ParseAddr takes without a zone, and a ':' in the text).
func ipv6(t []byte, ip *[16]byte) bool {
	hasColon := false
	for _, c := range t {
		if c == ':' {
			hasColon = true
		}
	}
	if !hasColon || len(t) > 64 {
		return false
	}
	a, err := netip.ParseAddr(string(t))
	if err != nil || a.Zone() != "" {
		return false
	}
	*ip = a.As16()
	return true
}
