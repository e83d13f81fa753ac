// Package fleet tests the fleet controller (cmd/fleet) end to end: real
// `shoestring dev` node processes on loopback driven through their
// management API (PUT /api/v1/config) by a real `shoestring-fleet serve`
// process, config rollouts across waves, a bad release halted at its
// canary, quarantined and reverted, the prefix invariant, a controller
// killed mid-wave, and the dashboard as headless Chromium renders it.
package fleet
