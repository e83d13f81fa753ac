package zone

import (
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
		z.Records = append(z.Records, rr)
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
// memory. It checks nothing beyond the syntax; the caller validates
// (Checker). Its error is the syntax error that stopped it, an ErrorList
// naming file and line. See Parse for filename and includeDir.
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
	top := newLineReader(r, filename, p.setActive)
	// The top-level name lives in the marker directory so that relative
	// includes resolve inside it; see include.go.
	zp := dns.NewZoneParser(top, origin, includeMarker+"/"+filepath.Base(filename))
	zp.SetDefaultTTL(missingTTL)
	if includeDir != "" {
		root, err := os.OpenRoot(includeDir)
		if err != nil {
			return fail(fmt.Sprintf("include directory: %v", err))
		}
		defer root.Close()
		p.fs = &includeFS{root: root, dir: includeDir, onRead: p.setActive}
		zp.SetIncludeAllowed(true)
		zp.SetIncludeFS(p.fs)
	}

	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		pos := Position{File: filename, Line: 0}
		if p.active != nil {
			pos = Position{File: p.active.name, Line: p.active.stmtLine}
		}
		problem := ""
		if rr.Header().Ttl == missingTTL {
			problem = fmt.Sprintf("%s %s: no TTL, and no $TTL or earlier TTL to default to",
				rr.Header().Name, typ(rr.Header().Rrtype))
		}
		if p.active != nil && p.active.generic {
			if err := checkGeneric(rr); err != "" {
				problem = fmt.Sprintf("%s %s: %s", rr.Header().Name, typ(rr.Header().Rrtype), err)
			}
		}
		fn(rr, pos, problem)
	}
	if err := zp.Err(); err != nil {
		return ErrorList{p.parseError(err)}
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
