package diff

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// servedZone is one zone every server loads: its origin and the file (the
// same file for all three servers, so signatures and TTLs are identical).
type servedZone = refserver.Zone

// server is one running name server under test.
type server = refserver.Server

// The reference servers are configured alike where it matters for the
// comparison: NSID and identity "diff-test" (Shoestring gets -nsid
// diff-test), version.bind refused, the default 1232-octet UDP limit, and
// no DNSSEC processing of their own (they serve the signed files as-is).
// Knot refuses zones that fail its semantic checks, so a broken test zone
// shows at once. Both refuse zone transfers, as they do out of the box
// (the corpus asks for AXFR and IXFR).
const serverID = "diff-test"

func startKnot(t *testing.T, zones []servedZone) *server {
	t.Helper()
	return refserver.StartKnot(t, refserver.KnotConfig{Zones: zones, Identity: serverID, SemanticChecks: true, RefuseTransfers: true}).Server
}

func startNSD(t *testing.T, zones []servedZone) *server {
	t.Helper()
	return refserver.StartNSD(t, refserver.NSDConfig{Zones: zones, Identity: serverID, RefuseTransfers: true})
}

// startShoestring runs the firmware binary in dev mode. The binary is
// built by testenv.Binary unless SHOESTRING_DIFF_BINARY names one; a build
// error or a binary that does not come up fails the test with its output
// rather than producing a wall of mismatches.
func startShoestring(t *testing.T, zones []servedZone) *server {
	t.Helper()
	t.Log("starting shoestring (SHOESTRING_DIFF_REFS_ONLY=1 compares knot with nsd only)")
	bin := os.Getenv("SHOESTRING_DIFF_BINARY")
	if bin == "" {
		bin = testenv.Binary(t)
	}
	dir := filepath.Join(t.TempDir(), "shoestring")
	port := refserver.Port(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	argv := []string{bin, "dev", "-data", filepath.Join(dir, "data"), "-listen", addr,
		"-http", "127.0.0.1:0", "-nsid", serverID}
	var origins []string
	for _, z := range zones {
		argv = append(argv, "-zone", z.Origin+"="+z.File)
		origins = append(origins, z.Origin)
	}
	s := &server{Addr: addr, Port: port, Dir: dir}
	s.Proc = refserver.Run(t, refserver.Command{Name: "shoestring", Argv: argv})
	s.WaitServing(t, origins...)
	return s
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := refserver.WriteFile(path, content); err != nil {
		t.Fatal(err)
	}
}
