// Package interop tests the secondary service against real primaries and
// secondaries on loopback: Knot (catalog zones, IXFR, and as a secondary
// of ours), BIND (TSIG), NSD (AXFR and NOTIFY), a second Shoestring node,
// and the failure cases (primary down, transfers cut, serials going
// backwards, zones over the limits). Each test starts its own daemons on
// free ports with configs in its temp directory; they need root only
// where the daemons do, and skip (or fail under CI=true) when a daemon is
// not installed.
//
// Timings the issue sets as its bar (NOTIFY to answer ≤ 1 s, catalog
// member added or removed ≤ 2 s) are asserted, measured from the change
// on the primary (an upper bound on "from its NOTIFY"), and logged.
package interop
