package kmod

// Glob matches a modules.alias pattern against a modalias the way
// modprobe does (fnmatch without flags): '*' any run, '?' one byte,
// "[...]" a set with ranges and '!' or '^' negation. path.Match is not
// the same: its '*' stops at '/', and its sets negate only with '^'.
func Glob(pattern, s string) bool {
	px, sx := 0, 0
	// Backtracking point for the last '*'.
	starP, starS := -1, 0
	for sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				px++
				sx++
				continue
			case '[':
				if ok, next, valid := matchSet(pattern, px, s[sx]); valid {
					if ok {
						px, sx = next, sx+1
						continue
					}
				} else if s[sx] == '[' { // a lone '[' is literal
					px++
					sx++
					continue
				}
			default:
				if c == s[sx] {
					px++
					sx++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		px, sx = starP+1, starS
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// matchSet matches b against the set starting at pattern[i] == '['. It
// returns whether b is in the set, the index after the set, and whether
// the set is well formed.
func matchSet(pattern string, i int, b byte) (match bool, next int, valid bool) {
	j := i + 1
	negate := false
	if j < len(pattern) && (pattern[j] == '!' || pattern[j] == '^') {
		negate = true
		j++
	}
	first := true
	for j < len(pattern) {
		c := pattern[j]
		if c == ']' && !first {
			return match != negate, j + 1, true
		}
		first = false
		if j+2 < len(pattern) && pattern[j+1] == '-' && pattern[j+2] != ']' {
			if c <= b && b <= pattern[j+2] {
				match = true
			}
			j += 3
			continue
		}
		if c == b {
			match = true
		}
		j++
	}
	return false, 0, false
}
