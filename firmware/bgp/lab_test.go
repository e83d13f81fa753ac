package bgp

import (
	"os"
	"testing"

	"github.com/shoestring-dns/shoestring/test/nslab"
)

// The daemon tests run in nslab's namespaces, BGP on port 179 as in
// production; see package nslab.

// envHelper makes the test binary the speaker process that
// TestBIRDKillProcess kills.
const envHelper = "SHOESTRING_BGP_HELPER"

// The lab's addresses.
const (
	spkIP4  = nslab.SpeakerIP4
	spkIP6  = nslab.SpeakerIP6
	peerIP4 = nslab.PeerIP4
	peerIP6 = nslab.PeerIP6
)

func TestMain(m *testing.M) {
	if os.Getenv(envHelper) != "" {
		runHelperSpeaker()
	}
	os.Exit(nslab.Main(m, "ssbgp"))
}
