package metrics

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
)

// TestTenants: two tenants' real metrics texts merged beside a host's own
// registry, each series labelled with its tenant, without a gathering
// error (the host's go_* series and the tenants' share families); a
// tenant that did not answer is scrape_ok 0.
func TestTenants(t *testing.T) {
	text := func(serial uint32) []byte {
		r := New(Sources{DNS: func() dnsserver.QueryMetrics {
			return dnsserver.QueryMetrics{Serials: map[string]uint32{"de.": serial}}
		}}, Build{})
		var b bytes.Buffer
		fams, err := r.Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			expfmt.MetricFamilyToText(&b, f)
		}
		return b.Bytes()
	}
	scrape := func(context.Context) (map[string][]byte, map[string]error) {
		return map[string][]byte{"de": text(7), "nic": text(9)}, map[string]error{"enum": errors.New("restarting")}
	}
	host := New(Sources{}, Build{})
	fams, err := prometheus.Gatherers{host.Gatherer(), Tenants(scrape)}.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	var out bytes.Buffer
	for _, f := range fams {
		expfmt.MetricFamilyToText(&out, f)
	}
	s := out.String()
	for _, want := range []string{
		`shoestring_zone_served_serial{tenant="de",zone="de."} 7`,
		`shoestring_zone_served_serial{tenant="nic",zone="de."} 9`,
		`shoestring_tenant_scrape_ok{tenant="de"} 1`,
		`shoestring_tenant_scrape_ok{tenant="enum"} 0`,
		`go_goroutines{tenant="nic"}`,
		"\ngo_goroutines ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("lacks %s", want)
		}
	}
}
