// Package diff is the differential test of Shoestring's DNS answers: the
// same zone files are served by Knot, NSD and Shoestring, each started on
// loopback by the test, and a corpus of queries is sent to all three. Where
// the two reference servers agree, Shoestring has to give the same answer;
// where they disagree the case tells us nothing and is only counted.
//
// The zones are in testdata (the RFC 4592 example zone, example.com with
// CNAME, DNAME, delegations, empty non-terminals, wildcards and large
// RRsets, its child sub.example.com, and child.unserved.test whose parent
// is not served); three more are signed at test time with dnssec-signzone
// and fresh keys (NSEC, NSEC3, NSEC3 with opt-out).
//
// How responses are compared:
//
//   - The bar: rcode (extended rcode included), the AA and TC flags, and the
//     answer and authority sections as sorted sets of RRs in text form, with
//     owner and RDATA names lowercased and TTLs kept. In a NOERROR response
//     with answers, NS records (and their RRSIGs) in the authority section
//     are left out: servers may add them or not. A case counts as agreed
//     when Knot and NSD agree on all of this, and Shoestring must then too.
//   - Also compared, but only where Knot and NSD agree on them: the opcode
//     and the other header flags, the message ID, the question section as
//     sent back (case included, so 0x20 must survive) and EDNS (OPT present,
//     version, DO, NSID).
//   - The additional section is reported, never failed.
//   - No response at all (or an unparseable one) is an outcome like any other.
//
// Run it with `go test ./test/diff/` as root with knot, nsd and bind9
// installed (see `make deps`). Environment:
//
//	SHOESTRING_DIFF_REFS_ONLY=1  compare Knot with NSD only; do not start Shoestring
//	SHOESTRING_DIFF_VERBOSE=1    also print both references' responses where they disagree
//	SHOESTRING_DIFF_BINARY=path  test this binary instead of building cmd/shoestring
//
// One case is one subtest, so `-run 'TestDifferential/wildcard/'` narrows the
// run to a category and `-v` lists every case with Knot's answer in brief.
package diff
