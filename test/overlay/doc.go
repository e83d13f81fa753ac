// Package overlay tests the management overlay end to end: nodes joining a
// real tailnet (an in-process tailscale testcontrol with its DERP and STUN
// servers, and a real headscale built from a pinned version in ./tools),
// the management API reached by tailnet name and refused by role and on
// every other address, metrics moving as queries arrive, dnstap reaching a
// collector over the tailnet, ctl joining the tailnet itself, and the status
// page as headless Chromium renders it.
package overlay
