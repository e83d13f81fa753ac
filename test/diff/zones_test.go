package diff

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

// Unsigned zones are served straight from testdata.
var staticZones = []servedZone{
	{Origin: "example.", File: "example.zone"},
	{Origin: "example.com.", File: "example.com.zone"},
	{Origin: "sub.example.com.", File: "sub.example.com.zone"},
	{Origin: "child.unserved.test.", File: "child.unserved.test.zone"},
}

// signedZone says how one copy of testdata/signed.zone.tmpl is signed.
type signedZone struct {
	Origin string
	Args   []string // dnssec-signzone options that choose the denial method
}

var signedZones = []signedZone{
	{Origin: "nsec.test."},
	// RFC 9276: no salt, no extra iterations.
	{Origin: "nsec3.test.", Args: []string{"-3", "-", "-H", "0"}},
	{Origin: "optout.test.", Args: []string{"-3", "-", "-H", "0", "-A"}},
}

// prepareZones returns every zone the servers load. The signed zones are
// signed here, with keys generated here, because signatures expire: a
// signed file checked into testdata would start failing a month later.
func prepareZones(t *testing.T) []servedZone {
	t.Helper()
	keygen := testenv.RequireTool(t, "dnssec-keygen")
	signzone := testenv.RequireTool(t, "dnssec-signzone")
	tmpl, err := os.ReadFile(filepath.Join("testdata", "signed.zone.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var zones []servedZone
	for _, z := range staticZones {
		abs, err := filepath.Abs(filepath.Join("testdata", z.File))
		if err != nil {
			t.Fatal(err)
		}
		zones = append(zones, servedZone{Origin: z.Origin, File: abs})
	}
	dir := filepath.Join(t.TempDir(), "signed")
	for _, z := range signedZones {
		kdir := filepath.Join(dir, strings.TrimSuffix(z.Origin, "."))
		if err := os.MkdirAll(kdir, 0o755); err != nil {
			t.Fatal(err)
		}
		run := func(name string, args ...string) string {
			t.Helper()
			cmd := exec.Command(name, args...)
			cmd.Dir = kdir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("signing %s: %s %s: %v\n%s", z.Origin, name, strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		// ECDSA P-256 keys take milliseconds to make, unlike RSA.
		ksk := strings.TrimSpace(run(keygen, "-q", "-K", ".", "-a", "ECDSAP256SHA256", "-f", "KSK", z.Origin))
		zsk := strings.TrimSpace(run(keygen, "-q", "-K", ".", "-a", "ECDSAP256SHA256", z.Origin))
		src := "$ORIGIN " + z.Origin + "\n" + string(tmpl)
		for _, k := range []string{ksk, zsk} {
			key, err := os.ReadFile(filepath.Join(kdir, k+".key"))
			if err != nil {
				t.Fatal(err)
			}
			src += string(key)
		}
		writeFile(t, filepath.Join(kdir, "zone"), src)
		out := filepath.Join(kdir, "zone.signed")
		args := append([]string{"-K", ".", "-o", z.Origin, "-f", out, "-S"}, z.Args...)
		run(signzone, append(args, "zone")...)
		zones = append(zones, servedZone{Origin: z.Origin, File: out})
	}
	return zones
}
