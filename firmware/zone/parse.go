package zone

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// missingTTL marks records that got no TTL from anywhere. ZoneParser
// silently gives such records TTL 0 on some paths ("www IN A ..." with no
// $TTL before it), which would make the box serve uncacheable answers; we
// set this as the default instead and report it, as BIND refuses such a
// file. An explicit TTL of 4294967295 is caught too, which is no loss: RFC
// 2181 §8 makes TTLs with the top bit set mean zero anyway.
const missingTTL = math.MaxUint32

// ParseFile reads a master file. $INCLUDE may open only files inside the
// directory of path, after resolving symlinks and "..". The zone returned
// has passed Validate; errors are an ErrorList.
func ParseFile(path, origin string) (*Zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ErrorList{{Pos: Position{File: path}, Msg: err.Error()}}
	}
	defer f.Close()
	return Parse(f, origin, path, filepath.Dir(path))
}

// Parse reads a master file from r. filename is used in errors. includeDir
// is the only directory $INCLUDE may read from; "" refuses $INCLUDE. The
// zone returned has passed Validate, with identical duplicate records
// merged; errors are an ErrorList.
func Parse(r io.Reader, origin, filename, includeDir string) (*Zone, error) {
	z := &Zone{Origin: Canonical(origin)}
	var c collector
	err := ParseStream(r, origin, filename, includeDir, func(rr dns.RR, pos Position, problem string) {
		if problem != "" {
			c.add(len(z.Records), pos, "%s", problem)
		}
		z.Records = append(z.Records, dns.Copy(rr))
		z.Pos = append(z.Pos, pos)
	})
	if err != nil {
		return nil, err
	}
	if err := c.list(); err != nil {
		return nil, err
	}
	z.dedup()
	if err := z.Validate(); err != nil {
		return nil, err
	}
	return z, nil
}

// ParseStream reads a master file from r and hands each record to fn as
// it is read, with where it was read and, when the parser found something
// wrong with it (no TTL, bad RFC 3597 data), the problem. It holds no
// records itself: this is how a big zone file is imported in bounded
// memory. rr is fn's only while fn runs (the reader reuses it): fn copies
// what it keeps. It checks nothing beyond the syntax; the caller validates
// (Checker). Its error is the syntax error that stopped it, an ErrorList
// naming file and line. See Parse for filename and includeDir.
//
// The common one-line records are read by a fast reader (fast.go); what
// it is not certain of goes to miekg/dns's ZoneParser, so the records and
// errors are ZoneParser's either way.
func ParseStream(r io.Reader, origin, filename, includeDir string, fn func(rr dns.RR, pos Position, problem string)) error {
	fail := func(msg string) error { return ErrorList{{Pos: Position{File: filename}, Msg: msg}} }
	if origin == "" {
		return fail("no origin given")
	}
	origin = Canonical(origin)
	if _, ok := dns.IsDomainName(origin); !ok {
		return fail(fmt.Sprintf("origin %q is not a domain name", origin))
	}

	p := &parser{filename: filename, includeDir: includeDir}
	fr := newFastReader(r, origin)
	for {
		rr, res := fr.next()
		switch res {
		case fastRecord:
			problem := ""
			if rr.Header().Ttl == missingTTL {
				problem = noTTL(rr)
			}
			fn(rr, Position{File: filename, Line: fr.start}, problem)
			continue
		case fastEOF:
			return nil
		case fastEntry:
			if p.entry(fr, fn) {
				continue
			}
		}
		return p.rest(fr, fn)
	}
}

func noTTL(rr dns.RR) string {
	return fmt.Sprintf("%s %s: no TTL, and no $TTL or earlier TTL to default to",
		rr.Header().Name, typ(rr.Header().Rrtype))
}

// withOwner is the entry in fr.buf with the last owner written in front
// when it has none (it starts with a blank), so that ZoneParser, starting
// afresh, gives it the owner it would have had.
func withOwner(fr *fastReader) []byte {
	if fr.owner == "" || len(fr.buf) == 0 || (fr.buf[0] != ' ' && fr.buf[0] != '\t') {
		return fr.buf
	}
	b := make([]byte, 0, len(fr.owner)+len(fr.buf))
	return append(append(b, fr.owner...), fr.buf...)
}

// entry has ZoneParser read the one entry the fast reader did not
// understand. It reports false, having passed on nothing, when
// ZoneParser does not read exactly one record from it without error: then
// the rest of the input goes to ZoneParser (rest), which gives the records
// and errors it always gave. Some records read differently at the end of
// the input (an A record without data), so unless the entry is the last
// in the file a record to be dropped follows it, as something always did.
func (p *parser) entry(fr *fastReader, fn func(rr dns.RR, pos Position, problem string)) bool {
	text := withOwner(fr)
	want := 1
	if !fr.eof {
		text = append(text[:len(text):len(text)], entrySentinel...)
		want = 2
	}
	lr := newLineReader(bytes.NewReader(text), p.filename, p.setActive)
	lr.line, lr.stmtLine = fr.start, fr.start
	zp := dns.NewZoneParser(lr, fr.origin, p.filename)
	zp.SetDefaultTTL(fr.defTTL)
	var got dns.RR
	var pos Position
	var problem string
	n := 0
	err := p.run(zp, 0, 0, nil, func(rr dns.RR, ps Position, pr string) {
		n++
		if n == 1 {
			got, pos, problem = rr, ps, pr
		}
	})
	p.active = nil
	if err != nil || n != want {
		return false
	}
	fr.record(got)
	fn(got, pos, problem)
	return true
}

const entrySentinel = ". 0 IN TYPE65535 \\# 0\n"

// rest has ZoneParser read the entry in fr.buf and all that follows,
// starting from the state the fast reader kept: the origin, the default
// TTL (set by a $TTL line if $TTL set it) and the last owner, which a
// record in front gives ZoneParser and which is then dropped.
func (p *parser) rest(fr *fastReader, fn func(rr dns.RR, pos Position, problem string)) error {
	var prefix []byte
	if fr.byDirective {
		prefix = fmt.Appendf(prefix, "$TTL %d\n", fr.defTTL)
	}
	skip := 0
	if fr.owner != "" {
		prefix = fmt.Appendf(prefix, "%s %d IN TYPE65535 \\# 0\n", fr.owner, fr.defTTL)
		skip = 1
	}
	shift := fr.start - 1 - bytes.Count(prefix, []byte{'\n'})
	r := io.MultiReader(bytes.NewReader(prefix), bytes.NewReader(fr.buf), fr.br)
	top := newLineReader(r, p.filename, p.setActive)
	top.line += shift
	top.stmtLine = top.line
	// The top-level name lives in the marker directory so that relative
	// includes resolve inside it; see include.go.
	zp := dns.NewZoneParser(top, fr.origin, includeMarker+"/"+filepath.Base(p.filename))
	zp.SetDefaultTTL(missingTTL)
	if !fr.byDirective {
		zp.SetDefaultTTL(fr.defTTL)
	}
	if p.includeDir != "" {
		root, err := os.OpenRoot(p.includeDir)
		if err != nil {
			return ErrorList{{Pos: Position{File: p.filename}, Msg: fmt.Sprintf("include directory: %v", err)}}
		}
		defer root.Close()
		p.fs = &includeFS{root: root, dir: p.includeDir, onRead: p.setActive}
		zp.SetIncludeAllowed(true)
		zp.SetIncludeFS(p.fs)
	}
	return p.run(zp, shift, skip, top, fn)
}

// run hands fn the records zp reads but the first skip. shift is added
// to the lines ZoneParser names in errors in top, which may start later
// in the file than ZoneParser thinks.
func (p *parser) run(zp *dns.ZoneParser, shift, skip int, top *lineReader, fn func(rr dns.RR, pos Position, problem string)) error {
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if skip > 0 {
			skip--
			continue
		}
		pos := Position{File: p.filename, Line: 0}
		if p.active != nil {
			pos = Position{File: p.active.name, Line: p.active.stmtLine}
		}
		problem := ""
		if rr.Header().Ttl == missingTTL {
			problem = noTTL(rr)
		}
		if p.active != nil && p.active.generic {
			if err := checkGeneric(rr); err != "" {
				problem = fmt.Sprintf("%s %s: %s", rr.Header().Name, typ(rr.Header().Rrtype), err)
			}
		}
		fn(rr, pos, problem)
	}
	if err := zp.Err(); err != nil {
		e := p.parseError(err)
		if top != nil && p.active == top && e.Pos.Line > 0 {
			e.Pos.Line += shift
		}
		return ErrorList{e}
	}
	return nil
}

// checkGeneric checks a record written in RFC 3597 form ("TYPE29 \# 3
// 000001"). For a type ZoneParser knows it decodes the bytes into that
// type's fields without checking them, so a short or malformed blob
// becomes a record whose text form is nonsense that no parser, ours
// included, reads back. Such a zone could be served and transferred but
// not exported and re-imported; we refuse it instead. Only these records
// pay for the check.
func checkGeneric(rr dns.RR) string {
	if _, ok := rr.(*dns.RFC3597); ok {
		return ""
	}
	again, err := dns.NewRR(rr.String())
	if err != nil || again == nil || !dns.IsDuplicate(rr, again) {
		return "the \\# data is not valid " + typ(rr.Header().Rrtype) + " data"
	}
	return ""
}

// parser is the state one Parse call shares with its line readers and
// include file system.
type parser struct {
	filename   string
	includeDir string
	fs         *includeFS
	active     *lineReader // the reader the lexer used last
}

func (p *parser) setActive(lr *lineReader) { p.active = lr }

// parseError turns a ZoneParser error into an Error naming the real file
// and line. The dns.ParseError fields are unexported, so this takes its
// text apart: "<file>: dns: <msg>: <token> at line: <line>:<col>". The
// <file> part is our marker name, which operators must not see.
func (p *parser) parseError(err error) *Error {
	e := &Error{Pos: Position{File: p.filename}, Msg: err.Error()}
	if p.active != nil {
		e.Pos.File = p.active.name
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, " at line: "); i >= 0 {
		var line, col int
		if _, serr := fmt.Sscanf(msg[i:], " at line: %d:%d", &line, &col); serr == nil {
			e.Pos.Line = line
		}
		msg = msg[:i]
	}
	if _, after, ok := strings.Cut(msg, "dns: "); ok {
		msg = after
	}
	e.Msg = msg

	// The token is the include name for both of these.
	token := ""
	if i := strings.LastIndex(msg, ": \""); i >= 0 {
		token, _ = strconv.Unquote(msg[i+2:])
	}
	switch {
	case p.fs != nil && p.fs.refused != nil:
		e.Msg = fmt.Sprintf("$INCLUDE %q refused: %v", token, p.fs.refused)
	case strings.HasPrefix(msg, "$INCLUDE directive not allowed"):
		e.Msg = fmt.Sprintf("$INCLUDE %q: not allowed here (the zone was not read from a file in a directory)", token)
	}
	return e
}
