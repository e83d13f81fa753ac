package xfr

// SerialNewer reports whether serial a is newer than b in RFC 1982
// arithmetic: a zone's serial wraps around 2^32, so 1 is newer than
// 4294967295 and "greater" means "ahead by less than half the space".
// Serials exactly half the space apart are undefined; neither is newer.
func SerialNewer(a, b uint32) bool {
	d := a - b
	return d != 0 && d < 1<<31
}

// SerialCompare is -1, 0 or 1 as a is older than, equal to or newer than
// b (RFC 1982); 0 also for the undefined case of serials half the space
// apart.
func SerialCompare(a, b uint32) int {
	switch {
	case SerialNewer(a, b):
		return 1
	case SerialNewer(b, a):
		return -1
	}
	return 0
}
