// Package bgp is the node's BGP speaker: it announces the node's service
// prefixes to its upstream routers and IXP route servers, and nothing else.
//
// The session state machine is github.com/jwhited/corebgp; the UPDATE
// messages are built here with github.com/osrg/gobgp/v4/pkg/packet/bgp. The
// caller (health and drain logic) states the routes it wants announced with
// SetRoutes; each established session converges on that desired state in its
// own goroutine, so a slow peer delays only itself and a burst of changes
// collapses into one diff instead of queueing.
//
// Routes received from peers are decoded only far enough to count them and
// enforce a max-prefix limit; their attributes are never kept. The only
// per-route memory is a packed key per received prefix (8 to 16 bytes; a
// 1.2M-prefix full table costs 16 MiB), so that re-announcements are not
// counted twice and the count stays exact.
//
// corebgp never dials or accepts by itself here: connect.go does both and
// hands each connection over through an in-process listener, wrapped in a
// guard against corebgp v0.8.5 crashing on a neighbour's hold time of 0
// (see guard.go). That also makes dial failures visible in PeerStatus.
//
// Route-refresh and graceful-restart are deliberately not advertised: corebgp
// cannot serve a refresh request, and a peer that believed we restart
// gracefully would keep routes to a node that is gone, which defeats anycast
// failover.
package bgp
