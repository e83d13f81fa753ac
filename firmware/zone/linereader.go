package zone

import (
	"bufio"
	"io"
)

// lineReader feeds one master file to the miekg/dns lexer and works out
// the line on which each entry starts. ZoneParser reports lines only in
// errors, yet validation errors must name the line of the offending
// record. Because lineReader is an io.ByteReader the lexer reads through
// it byte by byte without buffering ahead of us, so when ZoneParser
// returns a record this reader has consumed exactly that record; the line
// of its first significant byte is the record's line, even when
// parentheses spread it over several lines.
type lineReader struct {
	br   *bufio.Reader
	name string // file name as shown in errors
	// onRead tells the parser which file the lexer read last: with
	// $INCLUDE several readers are live and only the last one used holds
	// the record just returned.
	onRead func(*lineReader)

	line      int // line of the next byte
	stmtLine  int // line where the current entry started
	atStart   bool
	depth     int // open parentheses
	inQuote   bool
	inComment bool
	escaped   bool
	// generic is set when the current entry uses RFC 3597 "\#" data,
	// which Parse checks further (see there).
	generic bool
}

func newLineReader(r io.Reader, name string, onRead func(*lineReader)) *lineReader {
	return &lineReader{br: bufio.NewReader(r), name: name, onRead: onRead, line: 1, stmtLine: 1, atStart: true}
}

func (lr *lineReader) ReadByte() (byte, error) {
	c, err := lr.br.ReadByte()
	if err != nil {
		return c, err
	}
	lr.onRead(lr)
	lr.track(c)
	return c, nil
}

// Read is never used by the lexer (it prefers ReadByte) but makes
// lineReader an io.Reader, which the lexer's constructor requires.
func (lr *lineReader) Read(p []byte) (int, error) {
	for i := range p {
		c, err := lr.ReadByte()
		if err != nil {
			return i, err
		}
		p[i] = c
	}
	return len(p), nil
}

// track follows just enough master-file syntax (comments, quotes, escapes,
// parentheses) to know where a logical entry starts.
func (lr *lineReader) track(c byte) {
	if c == '\n' {
		lr.line++
	}
	switch {
	case lr.escaped:
		lr.escaped = false
		if c == '#' && !lr.inQuote {
			lr.generic = true
		}
		return
	case lr.inComment:
		if c != '\n' {
			return
		}
		lr.inComment = false
	case lr.inQuote:
		switch c {
		case '\\':
			lr.escaped = true
		case '"':
			lr.inQuote = false
		}
		return
	}
	if c == '\n' {
		if lr.depth == 0 {
			lr.atStart = true
		}
		return
	}
	if lr.atStart {
		switch c {
		case ' ', '\t', '\r':
			return
		case ';':
			lr.inComment = true
			return
		}
		lr.atStart = false
		lr.stmtLine = lr.line
		lr.generic = false
	}
	switch c {
	case '\\':
		lr.escaped = true
	case '"':
		lr.inQuote = true
	case ';':
		lr.inComment = true
	case '(':
		lr.depth++
	case ')':
		if lr.depth > 0 {
			lr.depth--
		}
	}
}
