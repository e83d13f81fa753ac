package overlay

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/firmware/overlay"
	"github.com/shoestring-dns/shoestring/test/nslab"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// testStatusPage loads the node's status page in headless Chromium, over
// the tailnet as an operator's browser would (a loopback port forwarded
// through the operator's tailnet connection to http://NODE/), and checks
// what a person would see: who and where the node is, its zones with
// serials, BGP, the tailnet, dnstap, recent log lines, who is looking — and
// the overall colour actually painted.
func testStatusPage(t *testing.T, ops *overlay.Tailnet, rn *runningNode) {
	chromium := testenv.RequireTool(t, "chromium")
	url := forward(t, ops, rn.name+":80")

	code, body := call(t, ops.HTTPClient(), "GET", apiURL(rn, "/api/v1/zones"), nil)
	zones := decode[[]api.ZoneInfo](t, body)
	if code != 200 || len(zones) != 1 {
		t.Fatalf("zones: %d %s", code, body)
	}

	dom := runChromium(t, chromium, "--dump-dom", url)
	text := tagText(dom)
	for _, want := range []struct{ what, re string }{
		{"title", `<h1><span class="dot (green|amber|red)"></span>ns1</h1>`},
		{"location", `Lab rack ns1`},
		{"tailnet name", `ns1\.` + regexp.QuoteMeta(magicDomain)},
		{"version", `version test`},
		{"zone and serial", fmt.Sprintf(`example\.org\. %d`, zones[0].Serial)},
		{"zone state", `serving`},
		{"BGP section", `<h2>BGP</h2>`},
		{"health section", `(Prefixes and health checks|no health checks)`},
		{"tailnet peers", `ns2\.` + regexp.QuoteMeta(magicDomain)},
		{"dnstap", `to ops:6000: connected`},
		{"log lines", `management: change`},
		{"viewer", `You are ops tag:ops, role admin`},
	} {
		src := text
		if strings.HasPrefix(want.re, "<") {
			src = dom
		}
		if !regexp.MustCompile(want.re).MatchString(src) {
			t.Errorf("page lacks %s (%s)", want.what, want.re)
		}
	}
	if t.Failed() {
		t.Logf("page text:\n%s", text)
		return
	}

	// The colour a person sees first is the one painted, not just named.
	overall := regexp.MustCompile(`<h1><span class="dot (\w+)">`).FindStringSubmatch(dom)[1]
	want := map[string]color.RGBA{"green": {0x22, 0xaa, 0x22, 0xff}, "amber": {0xee, 0x99, 0x00, 0xff}, "red": {0xdd, 0x22, 0x22, 0xff}}[overall]
	shot := filepath.Join(t.TempDir(), "page.png")
	runChromium(t, chromium, "--screenshot="+shot, "--window-size=1200,900", url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The title's dot is in the top left corner.
	found := 0
	for y := 0; y < 120; y++ {
		for x := 0; x < 120; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == want.R && uint8(g>>8) == want.G && uint8(b>>8) == want.B {
				found++
			}
		}
	}
	if found < 20 {
		t.Errorf("overall %s: the title's dot is not painted %v (%d pixels)", overall, want, found)
	}
	t.Logf("status page: overall %s", overall)
}

// runChromium runs headless Chromium with a fresh profile and no network
// beyond what the page loads.
func runChromium(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--user-data-dir=" + t.TempDir(),
	}, args...)
	cmd := exec.CommandContext(ctx, chromium, all...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// forward listens on loopback and carries each connection over the tailnet
// to addr.
func forward(t *testing.T, tn *overlay.Tailnet, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go nslab.PipeTCP(ln, func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return tn.Dial(ctx, "tcp", addr)
	})
	return "http://" + ln.Addr().String() + "/"
}

// tagText is the page's text with tags replaced by spaces and runs of
// white space collapsed, for matching what a person reads.
func tagText(html string) string {
	s := regexp.MustCompile(`(?s)<style.*?</style>|<[^>]*>`).ReplaceAllString(html, " ")
	s = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}
