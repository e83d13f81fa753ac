// Package fleet tests the fleet controller (cmd/fleet) end to end: real
// `shoestring dev` node processes on loopback driven through their
// management API (PUT /api/v1/config) by a real `shoestring-fleet serve`
// process, config rollouts across waves, a bad release halted at its
// canary, quarantined and reverted, the prefix invariant, a controller
// killed mid-wave, and the dashboard as headless Chromium renders it;
// rollouts over real BGP (six nodes in network namespaces peering with
// BIRD and gobgpd, test/lab), firmware rollouts through the nodes' OTA
// update transaction (binary slots under `shoestring launch`), and a zone
// added at a real Knot primary served on every node after its NOTIFY.
package fleet
