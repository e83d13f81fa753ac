package interop

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/test/refserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

// Dev mode takes the secondary service from flags, no config file: an
// operator tries it against their own primary in one line. Here NSD,
// with TSIG on transfers and NOTIFY, serves a zone and a catalog.
func TestDevModeFlags(t *testing.T) {
	t.Parallel()
	key := []string{"dev-key", "hmac-sha256", "SGVyZSBpcyBhIHNlY3JldCBmb3IgZGV2IG1vZGUh"}
	port := refserver.Port(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	nsd := startNSDWithKey(t, map[string]string{
		"plain.test.": zoneText("plain.test.", 1, 60, 30, 600, "www A 192.0.2.1"),
		"dcat.test.":  catalogText("dcat.test.", 1, "m dm.test."),
		"dm.test.":    zoneText("dm.test.", 1, 60, 30, 600, "www A 192.0.2.2"),
	}, addr, key)
	dir := mkdir(t, "dev")
	startProc(t, "ss-dev", testenv.Binary(t), "dev", "-data", dir, "-listen", addr, "-http", "127.0.0.1:0",
		"-tsig", key[0]+"="+key[1]+":"+key[2],
		"-secondary", "plain.test="+nsd.Addr+"@"+key[0],
		"-catalog", "dcat.test="+nsd.Addr+"@"+key[0])
	waitAnswer(t, addr, "www.plain.test.", dns.TypeA, "NOERROR 192.0.2.1", 10*time.Second)
	waitAnswer(t, addr, "www.dm.test.", dns.TypeA, "NOERROR 192.0.2.2", 5*time.Second)

	start := time.Now()
	nsd.update(t, "plain.test.", zoneText("plain.test.", 2, 60, 30, 600, "www A 192.0.2.3"))
	waitAnswer(t, addr, "www.plain.test.", dns.TypeA, "NOERROR 192.0.2.3", 5*time.Second)
	t.Logf("dev mode: NSD change (signed NOTIFY, signed transfer) answered %v after the reload", time.Since(start).Round(time.Millisecond))
	if strings.Contains(nsd.Log(), "bad tsig") {
		t.Errorf("NSD complains about our TSIG")
	}
}
