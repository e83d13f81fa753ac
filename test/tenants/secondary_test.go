package tenants

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dt "github.com/dnstap/golang-dnstap"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/test/refserver"
)

// testSecondary: a tenant added with a primary (a real Knot) and a TSIG
// key pulls its zone by AXFR and answers it; a NOTIFY from Knot makes a
// new serial live; once Knot's key changes, its NOTIFY and the
// transfers are refused with a clear error while the tenant keeps
// serving the version it has; a key that is no key is refused at add.
// The host's /metrics carries the tenant's series with a tenant label,
// and its log is read through the host's API. That tenant runs in a
// network namespace of its own (-netns): its transfers, SOA queries and
// dnstap go through its host's dial broker, which refuses a primary its
// config does not name; the catalog's tenant (cat) dials from the
// host's namespace itself.
func testSecondary(t *testing.T, l *lab) {
	key := refserver.Key{Name: "xfr", Algorithm: "hmac-sha256", Secret: "c2hvZXN0cmluZy10ZW5hbnQtc2Vjb25kYXJ5LWtleSE="}
	d := tenantDef{name: "sec", prefix: "198.18.54.0/24", addr: "198.18.54.53", zone: "sec.test"}
	zoneAt := func(serial int) string {
		return fmt.Sprintf("$ORIGIN sec.test.\n$TTL 300\n@ IN SOA ns1 host %d 3600 600 86400 300\n@ IN NS ns1\nns1 IN A %s\nwww IN TXT \"serial %d\"\n", serial, d.addr, serial)
	}
	k := refserver.StartKnot(t, refserver.KnotConfig{
		Zones:   []refserver.Zone{{Origin: "sec.test.", Text: zoneAt(1), Member: true}},
		Catalog: "catalog.test.",
		Key:     &key,
		Notify:  d.addr + ":53", NotifyVia: "127.0.0.1",
		Editable: true,
	})
	// A key that is no key is refused, with what is wrong.
	if out, err := l.ctl("tenant", "add", "bad", "-prefix", "198.18.55.0/24", "-address", "198.18.55.53",
		"-primary", k.Addr, "-secondary", "sec.test", "-tsig", "xfr:hmac-sha256:not base64!"); err == nil || !strings.Contains(out, "not base64") {
		t.Errorf("a malformed TSIG secret: %v %s", err, out)
	}
	tap, tapAddr := startCollector(t)
	start := time.Now()
	addArgs := []string{"tenant", "add", d.name, "-prefix", d.prefix, "-address", d.addr,
		"-primary", k.Addr, "-secondary", "sec.test", "-tsig", key.Name + ":" + key.Algorithm + ":" + key.Secret, "-dnstap", tapAddr, "-netns"}
	l.mustCtl(addArgs...)
	defer l.mustCtl("tenant", "remove", d.name)
	www := func() string {
		out, _ := l.nslab.Exec("dig", "+short", "+time=1", "+tries=1", "@"+d.addr, "www.sec.test", "TXT")
		return strings.Trim(strings.TrimSpace(out), `"`)
	}
	l.eventually(15*time.Second, "sec answering serial 1 through BIRD", func() bool {
		_, routed := l.routes()[d.prefix]
		return routed && www() == "serial 1"
	})
	t.Logf("tenant add with a primary → transferred, answered and announced: %s", time.Since(start).Round(time.Millisecond))
	st := l.status(d.name)
	if strings.Contains(string(mustJSON(t, st.Spec)), key.Secret) {
		t.Errorf("the tenant's status shows its TSIG secret")
	}
	l.checkNetwork(t, st, true)
	if p := st.Protections; p == nil || !p.BindDenied {
		t.Errorf("sec's protections: %+v", p)
	}
	// A primary its config does not name: the host refuses to connect,
	// naming the tenant and the address, in its secondary status and in
	// the host's log.
	if _, err := l.apiDo("PUT", "/api/v1/tenants/sec/api/v1/secondary/zones/other.test.", `{"primaries": ["127.0.0.1:9"]}`); err != nil {
		t.Fatal(err)
	}
	var other api.SecondaryZone
	l.eventually(10*time.Second, "sec refused a connection to a primary it was not given", func() bool {
		l.tenantGet(d.name, "api/v1/secondary/zones/other.test.", &other)
		return strings.Contains(other.LastError, "tenant sec may not connect to") && strings.Contains(other.LastError, "127.0.0.1:9:")
	})
	t.Logf("a primary not in sec's config: %s", other.LastError)
	if !regexp.MustCompile(`msg="dial broker: refused" .*tenant=sec err="tenant sec may not connect to [a-z]+ 127.0.0.1:9:`).MatchString(l.log.String()) {
		t.Errorf("the refusal is not in the host's log")
	}
	if _, err := l.apiDo("DELETE", "/api/v1/tenants/sec/api/v1/secondary/zones/other.test.", ""); err != nil {
		t.Fatal(err)
	}
	// A tenant given only Knot's catalog transfers its member too.
	cat := tenantDef{name: "cat", prefix: "198.18.56.0/24", addr: "198.18.56.53"}
	l.mustCtl("tenant", "add", cat.name, "-prefix", cat.prefix, "-address", cat.addr,
		"-primary", k.Addr, "-catalog", "catalog.test", "-tsig", key.Name+":"+key.Algorithm+":"+key.Secret)
	l.eventually(15*time.Second, "cat answering the catalog's member sec.test", func() bool {
		out, _ := l.nslab.Exec("dig", "+short", "+time=1", "+tries=1", "@"+cat.addr, "www.sec.test", "TXT")
		return strings.Trim(strings.TrimSpace(out), `"`) == "serial 1"
	})
	l.mustCtl("tenant", "remove", cat.name)
	// The same add again changes nothing.
	l.mustCtl(addArgs...)
	if again := l.status(d.name); again.PID != st.PID || again.Restarts != 0 {
		t.Errorf("adding sec again restarted it: pid %d → %d", st.PID, again.PID)
	}

	// A new serial at Knot: its NOTIFY makes it live.
	refserver.WriteFile(k.ZoneFile("sec.test."), zoneAt(2))
	start = time.Now()
	k.Ctl(t, []string{"zone-reload", "sec.test."})
	l.eventually(10*time.Second, "serial 2 live after Knot's NOTIFY", func() bool { return www() == "serial 2" })
	t.Logf("NOTIFY → new serial answered: %s", time.Since(start).Round(time.Millisecond))
	var sec api.SecondaryStatus
	l.tenantGet(d.name, "api/v1/secondary", &sec)
	if len(sec.Zones) != 1 || sec.Zones[0].Serial != 2 || sec.Zones[0].AXFRs+sec.Zones[0].IXFRs < 2 {
		t.Errorf("sec's secondary status after NOTIFY: %+v", sec)
	}

	// Its dnstap: sec's exchanges reach its collector under its name;
	// de's (queried too) do not.
	if got := l.query(defs[0]); got != "de" {
		t.Errorf("de: %q", got)
	}
	l.eventually(10*time.Second, "sec's response to www.sec.test. at its dnstap collector", func() bool {
		return tap.Saw("sec", "www.sec.test.", dt.Message_AUTH_RESPONSE)
	})
	if n := tap.Count(); tap.Saw("de", "www.de.test.", dt.Message_AUTH_RESPONSE) || tap.Identities() != "sec" {
		t.Errorf("sec's collector got others' exchanges (%d messages from %s)", n, tap.Identities())
	}

	// Metrics: the tenant's series on the host's /metrics, labelled.
	m := l.metrics()
	for _, want := range []string{
		`shoestring_zone_served_serial{tenant="sec",zone="sec.test."} 2`,
		`shoestring_tenant_scrape_ok{tenant="sec"} 1`,
		`shoestring_tenant_scrape_ok{tenant="de"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("host /metrics lacks %s", want)
		}
	}
	if !regexp.MustCompile(`shoestring_secondary_transfers_total\{kind="axfr",tenant="sec",zone="sec.test."\} [1-9]`).MatchString(m) {
		t.Errorf("host /metrics lacks sec's transfers")
	}
	if !regexp.MustCompile(`shoestring_dns_responses_total\{[^}]*tenant="de"[^}]*\} [1-9]`).MatchString(m) {
		t.Errorf("host /metrics lacks de's responses")
	}

	// Knot's key changes: its NOTIFY of serial 3 and the transfer are
	// refused, the error says why, and serial 2 is still answered.
	k.Ctl(t, []string{"conf-begin"}, []string{"conf-set", "key[xfr].secret", "b3RoZXItc2VjcmV0LW9mLWtub3QtcHJpbWFyeS0xMjM0NTY="}, []string{"conf-commit"})
	refserver.WriteFile(k.ZoneFile("sec.test."), zoneAt(3))
	k.Ctl(t, []string{"zone-reload", "sec.test."})
	l.eventually(10*time.Second, "the refused NOTIFY in sec's log", func() bool {
		return strings.Contains(l.mustCtl("tenant", "log", d.name), "NOTIFY with a bad or missing signature")
	})
	if _, err := l.apiDo("POST", "/api/v1/tenants/sec/api/v1/secondary/zones/sec.test./refresh", ""); err != nil {
		t.Fatal(err)
	}
	l.eventually(10*time.Second, "the failed transfer in sec's secondary status", func() bool {
		out := l.mustCtl("tenant", "secondary", d.name)
		return strings.Contains(strings.ToLower(out), "tsig") || strings.Contains(out, "BADSIG") || strings.Contains(out, "NOTAUTH")
	})
	t.Logf("after Knot's key changed:\n%s", l.mustCtl("tenant", "secondary", d.name))
	if got := www(); got != "serial 2" {
		t.Errorf("sec answers %q after a refused transfer, want serial 2", got)
	}
	if _, routed := l.routes()[d.prefix]; !routed {
		t.Error("sec withdrawn after a refused transfer")
	}
}

// startCollector starts a dnstap collector on 127.0.0.1 in the host's
// network namespace and returns it with its address.
func startCollector(t *testing.T) (*refserver.DnstapCollector, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return refserver.ServeDnstap(ln), ln.Addr().String()
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tenantGet reads one of a tenant's own endpoints through the host's API.
func (l *lab) tenantGet(name, path string, out any) {
	l.t.Helper()
	b, err := l.apiDo("GET", "/api/v1/tenants/"+name+"/"+path, "")
	if err != nil {
		l.t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		l.t.Fatalf("%s: %v\n%s", path, err, b)
	}
}

// metrics is the host's /metrics.
func (l *lab) metrics() string {
	l.t.Helper()
	b, err := l.apiDo("GET", "/metrics", "")
	if err != nil {
		l.t.Fatal(err)
	}
	return string(b)
}

// apiDo calls the host's API, with body unless it is empty.
func (l *lab) apiDo(method, path, body string) ([]byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+l.api+path, r)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode/100 != 2 {
		err = fmt.Errorf("%s %s: %s: %s", method, path, strconv.Itoa(resp.StatusCode), b)
	}
	return b, err
}
