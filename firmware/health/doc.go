// Package health decides what the node announces. Every announced prefix
// is checked the way users use it: a real DNS query to each of the node's
// own service addresses inside the prefix, for a canary name and type,
// which must be answered authoritatively, with data, and by this node
// (the reply's NSID is compared with ours, because a query to an anycast
// address whose local copy is missing would be answered by a neighbour);
// and every zone the node serves must be within its SOA expire. Checks run
// in rounds; Fall failing rounds in a row withdraw a prefix and Rise passing
// ones announce it again, so a single lost reply does not flap it.
//
// The outcome drives the BGP speaker through one call, SetRoutes, with the
// whole desired set: health decides, the speaker obeys. An operator can
// drain a prefix by hand (maintenance): it is re-announced with the
// GRACEFUL_SHUTDOWN community (RFC 8326) for the drain wait, so that
// traffic moves away before the route goes, then withdrawn until restored.
// Stop does the same for every prefix before a planned stop.
//
// Report (report.go) is what a healthy node is, defined once in named
// parts — serving, zones fresh, BGP, management — from which each
// consumer (the watchdog, the status page, the OTA commit) picks its own.
package health
