package overlay

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/miekg/dns"
)

// scrape reads a node's /metrics over the tailnet.
func scrape(t *testing.T, c *http.Client, rn *runningNode) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := call(t, c, "GET", apiURL(rn, "/metrics"), nil)
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value is a series' value (a histogram's count); labels are name=value
// pairs that must all match.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		for _, want := range labels {
			k, v, _ := strings.Cut(want, "=")
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// testMetrics sends known queries and checks each counter moved by exactly
// as much, then changes the zone and checks its serial.
func testMetrics(t *testing.T, c *http.Client, rn *runningNode) {
	before := scrape(t, c, rn)
	const hits, misses, overTCP = 7, 3, 2
	for i := 0; i < hits; i++ {
		query(t, rn.dnsAddr, "www.example.org", dns.TypeA, false)
	}
	for i := 0; i < misses; i++ {
		query(t, rn.dnsAddr, "nope.example.org", dns.TypeMX, false)
	}
	for i := 0; i < overTCP; i++ {
		query(t, rn.dnsAddr, "www.example.org", dns.TypeAAAA, true)
	}
	query(t, rn.dnsAddr, "example.net", dns.TypeA, false) // not ours: REFUSED
	after := scrape(t, c, rn)

	for _, x := range []struct {
		name   string
		labels []string
		delta  float64
	}{
		{"shoestring_dns_responses_total", []string{"zone=example.org.", "protocol=udp", "rcode=NOERROR"}, hits},
		{"shoestring_dns_responses_total", []string{"zone=example.org.", "protocol=udp", "rcode=NXDOMAIN"}, misses},
		{"shoestring_dns_responses_total", []string{"zone=example.org.", "protocol=tcp", "rcode=NOERROR"}, overTCP},
		{"shoestring_dns_responses_total", []string{"zone=", "protocol=udp", "rcode=REFUSED"}, 1},
		{"shoestring_dns_queries_total", []string{"protocol=udp", "qtype=MX"}, misses},
		{"shoestring_dns_queries_total", []string{"protocol=tcp", "qtype=AAAA"}, overTCP},
		{"shoestring_dns_response_duration_seconds", []string{"protocol=tcp"}, overTCP},
	} {
		if d := value(after, x.name, x.labels...) - value(before, x.name, x.labels...); d != x.delta {
			t.Errorf("%s%v moved by %v, want %v", x.name, x.labels, d, x.delta)
		}
	}
	if d := value(after, "shoestring_dns_response_duration_seconds", "protocol=udp") - value(before, "shoestring_dns_response_duration_seconds", "protocol=udp"); d < hits+misses {
		t.Errorf("udp latency histogram counted %v answers, want at least %d", d, hits+misses)
	}
	for _, name := range []string{"go_memstats_heap_inuse_bytes", "go_gc_duration_seconds", "process_resident_memory_bytes", "shoestring_build_info"} {
		if after[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	if value(after, "shoestring_build_info", "version=test") != 1 || value(after, "shoestring_ready") != 1 || value(after, "shoestring_tailnet_up") != 1 {
		t.Errorf("build_info, ready or tailnet_up wrong")
	}

	// A new version of the zone: the stored and the served serial follow.
	newZone := []byte(strings.Replace(exampleZone, " 1 3600", " 42 3600", 1))
	if code, body := call(t, c, "PUT", apiURL(rn, "/api/v1/zones/example.org"), newZone); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	after = scrape(t, c, rn)
	if s, served := value(after, "shoestring_zone_serial", "zone=example.org."), value(after, "shoestring_zone_served_serial", "zone=example.org."); s != 42 || served != 42 {
		t.Errorf("zone serial %v, served %v; want 42", s, served)
	}
	if age := value(after, "shoestring_zone_age_seconds", "zone=example.org."); age < 0 || age > 10 {
		t.Errorf("zone age %v s just after an update", age)
	}
}
