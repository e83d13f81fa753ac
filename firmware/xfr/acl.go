package xfr

import (
	"net/netip"
	"strings"
)

// Rule allows outbound transfers to clients from some addresses, signed
// with some key, or both.
type Rule struct {
	// From lists the client addresses allowed; empty allows any address.
	From []netip.Prefix
	// Key, when set, must have signed the request (canonical name).
	Key string
}

// ACL is a list of rules; a request is allowed when any rule allows it.
// An empty ACL allows nothing: zones are not handed out by default.
type ACL []Rule

// Allows reports whether a client at addr, whose request verified with
// key (nil when unsigned), may transfer.
func (a ACL) Allows(addr netip.Addr, key *Key) bool {
	addr = addr.Unmap()
	for _, r := range a {
		if r.Key != "" && (key == nil || !strings.EqualFold(key.Name, r.Key)) {
			continue
		}
		if len(r.From) == 0 {
			return true
		}
		for _, p := range r.From {
			if p.Contains(addr) {
				return true
			}
		}
	}
	return false
}
