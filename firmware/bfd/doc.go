// Package bfd is single-hop asynchronous Bidirectional Forwarding Detection
// (RFC 5880, over UDP as RFC 5881 has it), so that a BGP neighbour that
// stops forwarding is noticed in a fraction of a second instead of a hold
// time. It runs one session per neighbour, tells its caller when a session
// goes down or comes up, and does nothing else: no echo function, no demand
// mode, no authentication (the GTSM check, TTL 255 only, is RFC 5881's
// protection for unauthenticated single-hop sessions).
package bfd
