// Package ota is the root of over-the-air updates: ota/bundle is the
// signed (ed25519) bundle format, verified before a byte reaches the
// inactive slot; ota/slot owns slot state for every boot method (board/
// says which). The on-box agent that installs, tries once and commits a
// new slot only once the node is healthy, and fleet rollout, are issue
// 10's and 11's next steps (ota/README.md says what is done).
package ota
