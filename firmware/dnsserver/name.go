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

// labelOffsets fills offs with where the labels of a wire name start and
// returns how many there are (the root has none). A name may be two bytes
// longer than a wire name may ("*." before a 255-byte one).
func labelOffsets[T ~string | ~[]byte](w T, offs *[maxLabels + 1]uint16) int {
	n := 0
	for i := 0; i < len(w) && w[i] != 0 && n < len(offs); i += int(w[i]) + 1 {
		offs[n] = uint16(i)
		n++
	}
	return n
}

// canonicalCompare orders wire names as RFC 4034 §6.1 does: by labels from
// the right, each compared as lower-case octets (the names are lower case
// already). It takes strings and byte slices alike, so the query path
// compares its name without making a string of it.
func canonicalCompare[A, B ~string | ~[]byte](a A, b B) int {
	var ao, bo [maxLabels + 1]uint16
	na, nb := labelOffsets(a, &ao), labelOffsets(b, &bo)
	return compareLabels(a, ao[:na], b, bo[:nb])
}

// canonicalCompareTo is canonicalCompare(a, b) for a b whose label
// offsets bo were found once for many comparisons (a binary search).
func canonicalCompareTo[B ~string | ~[]byte](a string, b B, bo []uint16) int {
	var ao [16]uint16 // most names have fewer labels; a zeroed array costs
	na := 0
	for i := 0; i < len(a) && a[i] != 0; i += int(a[i]) + 1 {
		if na == len(ao) {
			return canonicalCompare(a, b)
		}
		ao[na] = uint16(i)
		na++
	}
	return compareLabels(a, ao[:na], b, bo)
}

// compareLabels compares names a and b, given where their labels start.
func compareLabels[A, B ~string | ~[]byte](a A, ao []uint16, b B, bo []uint16) int {
	i, j := len(ao), len(bo)
	for i > 0 && j > 0 {
		i--
		j--
		x, y := int(ao[i]), int(bo[j])
		lx, ly := int(a[x]), int(b[y])
		for k := 1; k <= min(lx, ly); k++ {
			if a[x+k] != b[y+k] {
				if a[x+k] < b[y+k] {
					return -1
				}
				return 1
			}
		}
		if lx != ly {
			if lx < ly {
				return -1
			}
			return 1
		}
	}
	switch {
	case i == 0 && j == 0:
		return 0
	case i == 0:
		return -1
	default:
		return 1
	}
}
