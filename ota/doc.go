// Package ota will hold over-the-air updates: the signed (ed25519) bundle
// format and its verification before a byte reaches the inactive slot,
// slot switching per boot method (board/ says which), the on-box agent
// that commits a new slot only once the node is healthy, and fleet
// rollout. So far only slot state exists (package ota/slot); the rest is
// issue 10's.
package ota
