package bgp

import "testing"

// The formats below are what corebgp v0.8.5 prints (peer.go logTransition,
// handleError, updateStartupDelay); the end-to-end tests with a fake peer
// check that real corebgp output reaches PeerStatus.
func TestParseCoreLog(t *testing.T) {
	for line, want := range map[string]coreEvent{
		"[10.0.0.2] FSM-out transition connect => openSent": {addr: "10.0.0.2", kind: coreTransition, dir: 0, to: "openSent"},
		"[fd79::2] FSM-in transition active => openSent":    {addr: "fd79::2", kind: coreTransition, dir: 1, to: "openSent"},
		"[10.0.0.2] FSM-out openSent error: error validating open message: notification sent code: 2 (OPEN Message Error) subcode: 2 (Bad Peer AS)": {
			addr: "10.0.0.2", kind: coreError, msg: "error validating open message: notification sent code: 2 (OPEN Message Error) subcode: 2 (Bad Peer AS)"},
		"[10.0.0.2] damping peer for 1m0s":                      {addr: "10.0.0.2", kind: coreDamping, msg: "1m0s"},
		"[10.0.0.2] startup delay timer expired, enabling peer": {addr: "10.0.0.2"},
		"something else": {},
	} {
		if got := parseCoreLog(line); got != want {
			t.Errorf("%q:\n got %+v\nwant %+v", line, got, want)
		}
	}
}
