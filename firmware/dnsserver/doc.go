// Package dnsserver is the authoritative DNS server: it answers queries from
// immutable per-zone snapshots that are built when a zone changes and
// swapped in atomically, so adding, replacing or deleting zones never stops
// or corrupts answers.
//
// The work is split so the query path does as little as possible:
//
//   - snapshot.go turns a validated zone into an indexed, read-only tree
//     (delegation cuts, DNAME owners, wildcards, NSEC/NSEC3 chains resolved
//     once, at build time); builder.go fills it from records in wire
//     form, nsec3.go keeps the NSEC3 chain, index.go finds a node by
//     its name (a flat table of 8-byte slots: fewer cache misses than a
//     map).
//   - resolve.go is the RFC 1034 §4.3.2 algorithm with RFC 4592 wildcards,
//     RFC 6672 DNAME, RFC 2308 negative answers and RFC 4035/5155 proofs.
//   - precompute.go runs that same algorithm at build time for the common
//     questions and keeps the packed answers, so most queries are an index
//     lookup and a copy. With DO on a signed zone a positive answer is the
//     same copy with the RRset's signatures appended from the snapshot
//     (server.go, emitSigned). Denials and wildcard answers, whose
//     proofs depend on the name asked, are packed per query from the
//     snapshot without allocating: the SOA and its signatures packed
//     once per zone, the NSEC records found by binary search, or the
//     name hashed on the stack and the NSEC3 records found by hash in a
//     chain kept packed in the arena (nsec3.go), names compressed as
//     miekg/dns would (denial.go).
//   - wire.go parses queries and writes responses without dns.Msg.
//   - udp.go (SO_REUSEPORT socket per core, recvmmsg/sendmmsg, no goroutine
//     per query, 4 MiB socket buffers so a burst is queued, not dropped)
//     and tcp.go (RFC 7766) move bytes.
//   - cookie.go (DNS cookies, RFC 7873 with RFC 9018 server cookies) and
//     rrl.go (response rate limiting) resist abuse; README.md says how.
//   - metrics.go counts queries per worker (no shared cache lines, no
//     allocation); tap.go hands exchanges to dnstap without waiting; conn.go
//     serves sockets the server did not open (the tailnet's).
package dnsserver
