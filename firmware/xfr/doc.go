// Package xfr speaks the zone transfer protocols on the wire: SOA queries,
// AXFR (RFC 5936) and IXFR (RFC 1995) as a client with limits on what a
// primary may send, the same two served to downstream secondaries from the
// store and its journal, NOTIFY (RFC 1996) both ways, and TSIG (RFC 8945)
// on all of it.
//
// It knows nothing of timers or which zones exist: the secondary package
// decides when to transfer what, and the node decides what a zone change
// means for the server. Records come and go as miekg/dns RRs, but messages
// are framed, signed and checked here, so that a multi-message transfer
// keeps at most one message's bytes besides the records it has decoded,
// and TSIG streams with unsigned intermediate messages (NSD signs only
// every 96th) verify.
package xfr
