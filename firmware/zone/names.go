package zone

import "github.com/miekg/dns"

// Names are compared in canonical wire form (RFC 4034 §6.2: uncompressed,
// ASCII lower-cased) rather than as text, because the text form is not
// unique: "\065bc", "ABC" and "abc" are one name, and "a\.b" is a single
// label. The parser keeps names as written, so text comparison would miss
// conflicts an operator's resolver would certainly see.

// wireKey returns name's canonical wire form as a string (for map keys).
// buf is scratch space of at least 256 bytes.
func wireKey(name string, buf []byte) (string, error) {
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return "", err
	}
	return string(appendLower(nil, buf[:n])), nil
}

// appendLower appends a wire-form name lower-cased. Length octets are at
// most 63, below 'A', so lower-casing every byte in 'A'..'Z' touches only
// label text.
func appendLower(dst, name []byte) []byte {
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// inZone reports whether key is apex or a name below it.
func inZone(key, apex string) bool {
	start := len(key) - len(apex)
	if start < 0 || key[start:] != apex {
		return false
	}
	// The suffix must start on a label boundary: "xexample." is not below
	// "example." even though the bytes match. The root label counts as a
	// boundary so that everything is inside the root zone.
	for off := 0; off < len(key); off += 1 + int(key[off]) {
		if off == start {
			return true
		}
		if key[off] == 0 {
			break
		}
	}
	return false
}

// keyString renders a wire-form key as text for messages.
func keyString(key string) string {
	name, _, err := dns.UnpackDomainName([]byte(key), 0)
	if err != nil {
		return "?"
	}
	return name
}
