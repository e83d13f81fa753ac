// Package ota holds over-the-air updates: the signed (ed25519) bundle
// format and its verification before a byte reaches the inactive slot
// (package ota/bundle), slot state per boot method (package ota/slot),
// and the on-box agent that installs a bundle into the inactive slot and
// arms one trial boot (package ota/agent). Still to come (issue 10): the
// update transaction that drains, reboots once, and commits a new slot
// only once the node is healthy, and fleet rollout. See README.md.
package ota
