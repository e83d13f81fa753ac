package node

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// TestAPIZoneLifecycle drives the management API as ctl does: a zone is
// uploaded, served, shown, rejected when broken (with every error's line,
// and the old version still served), deleted, and the status page shows
// what is there.
func TestAPIZoneLifecycle(t *testing.T) {
	dnsAddr, httpAddr, stop := startNode(t, t.TempDir())
	defer stop()
	c := api.NewClient(httpAddr)

	info, err := c.PutZone("example.org", []byte(zoneText("example.org.", 7, "192.0.2.7")))
	if err != nil {
		t.Fatal(err)
	}
	if info.Origin != "example.org." || info.Serial != 7 || !info.Serving || info.Source != "api" {
		t.Fatalf("put: %+v", info)
	}
	answer := func() string {
		m := new(dns.Msg)
		m.SetQuestion("www.example.org.", dns.TypeA)
		r, err := dns.Exchange(m, dnsAddr)
		if err != nil || len(r.Answer) != 1 {
			t.Fatalf("query: %v %v", err, r)
		}
		return r.Answer[0].(*dns.A).A.String()
	}
	if got := answer(); got != "192.0.2.7" {
		t.Fatalf("served %s", got)
	}

	broken := "$TTL 300\n@ IN SOA ns1 h 8 3600 900 1209600 60\n@ IN NS ns1\nwww IN CNAME a\nwww IN A 192.0.2.8\nout.example.net. IN A 192.0.2.9\n"
	_, err = c.PutZone("example.org.", []byte(broken))
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusUnprocessableEntity {
		t.Fatalf("broken zone: want 422, got %v", err)
	}
	joined := strings.Join(ae.Body.Errors, "\n")
	for _, want := range []string{":5", ":6", "CNAME", "outside"} {
		if !strings.Contains(joined, want) {
			t.Errorf("errors lack %q:\n%s", want, joined)
		}
	}
	if got := answer(); got != "192.0.2.7" {
		t.Fatalf("after a rejected upload the zone answers %s", got)
	}
	d, err := c.Zone("example.org")
	if err != nil || d.Serial != 7 || !strings.Contains(d.Text, "192.0.2.7") {
		t.Fatalf("zone detail: %v %+v", err, d)
	}

	resp, err := http.Get("http://" + httpAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "example.org.") || !strings.Contains(string(page), "serving") {
		t.Fatalf("status page lacks the zone:\n%s", page)
	}
	if err := c.Health(); err != nil {
		t.Fatalf("healthz: %v", err)
	}

	if err := c.DeleteZone("example.org."); err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	if r, err := dns.Exchange(m, dnsAddr); err != nil || r.Rcode != dns.RcodeRefused {
		t.Fatalf("deleted zone: want REFUSED, got %v %v", err, r)
	}
	if err := c.DeleteZone("example.org."); !errors.As(err, &ae) || ae.Code != http.StatusNotFound {
		t.Fatalf("second delete: want 404, got %v", err)
	}
	zs, err := c.Zones()
	if err != nil || len(zs) != 0 {
		t.Fatalf("zones after delete: %v %+v", err, zs)
	}
}
