package dnsserver

import (
	"github.com/miekg/dns"
)

// Names inside the server are kept in lower-case wire form (a string of
// length-prefixed labels ending in the zero byte). Map lookups on the query
// path then need no conversion beyond lower-casing the query's own bytes.

// maxLabels is the most labels a 255-octet name can have.
const maxLabels = 128

// wireName converts a presentation name to lower-case wire form.
func wireName(s string) (string, error) {
	var buf [256]byte
	n, err := dns.PackDomainName(dns.Fqdn(s), buf[:], 0, nil, false)
	if err != nil {
		return "", err
	}
	lower(buf[:n])
	return string(buf[:n]), nil
}

// mustWire is wireName for names that came out of a validated zone.
func mustWire(s string) string {
	w, err := wireName(s)
	if err != nil {
		panic("dnsserver: bad name " + s + ": " + err.Error())
	}
	return w
}

// presentation converts a wire name back to presentation form.
func presentation(w string) string {
	s, _, err := dns.UnpackDomainName([]byte(w), 0)
	if err != nil {
		return "."
	}
	return s
}

func lower(b []byte) {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
}

// labelCount returns the number of labels of a wire name (root has 0).
func labelCount(w string) int {
	n := 0
	for i := 0; i < len(w) && w[i] != 0; i += int(w[i]) + 1 {
		n++
	}
	return n
}

// parentName strips the first label of a wire name; the root stays root.
func parentName(w string) string {
	if len(w) <= 1 {
		return w
	}
	return w[int(w[0])+1:]
}

// firstLabel returns the first label of a wire name, without its length.
func firstLabel(w string) string {
	if len(w) <= 1 {
		return ""
	}
	return w[1 : 1+int(w[0])]
}

// isWildcard reports whether a wire name's first label is "*".
func isWildcard(w string) bool { return len(w) >= 2 && w[0] == 1 && w[1] == '*' }

// wildcardOf returns "*." prepended to a wire name.
func wildcardOf(w string) string { return "\x01*" + w }

// isBelow reports whether child is strictly below parent (both wire form).
func isBelow(child, parent string) bool {
	if len(child) <= len(parent) || child[len(child)-len(parent):] != parent {
		return false
	}
	// The suffix must start at a label boundary.
	for i := 0; i < len(child); i += int(child[i]) + 1 {
		if len(child)-i == len(parent) {
			return true
		}
		if child[i] == 0 {
			break
		}
	}
	return false
}

// labels splits a wire name into the offsets of its labels.
func labels(w string, offs []int) []int {
	offs = offs[:0]
	for i := 0; i < len(w) && w[i] != 0; i += int(w[i]) + 1 {
		offs = append(offs, i)
	}
	return offs
}

// canonicalCompare orders wire names as RFC 4034 §6.1 does: by labels from
// the right, each compared as lower-case octets.
func canonicalCompare(a, b string) int {
	var ao, bo [maxLabels]int
	la := labels(a, ao[:0])
	lb := labels(b, bo[:0])
	i, j := len(la)-1, len(lb)-1
	for i >= 0 && j >= 0 {
		x := a[la[i]+1 : la[i]+1+int(a[la[i]])]
		y := b[lb[j]+1 : lb[j]+1+int(b[lb[j]])]
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
		i--
		j--
	}
	switch {
	case i < 0 && j < 0:
		return 0
	case i < 0:
		return -1
	default:
		return 1
	}
}
