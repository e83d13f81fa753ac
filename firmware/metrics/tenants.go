package metrics

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A host (`shoestring host`) exports its tenants' series as its own:
// each tenant serves its metrics on its control socket, the host reads
// them all at each scrape and adds a tenant="NAME" label to every series
// (its queries, responses by rcode, zone serials, transfers, its Go
// runtime...), and shoestring_tenant_scrape_ok says which tenants
// answered.

// TenantScrape reads every tenant's metrics text by name, and why a
// tenant's could not be read.
type TenantScrape func(ctx context.Context) (texts map[string][]byte, errs map[string]error)

// TenantLabel is the label that names a host's tenant.
const TenantLabel = "tenant"

// tenantScrapeTimeout bounds one scrape of every tenant.
const tenantScrapeTimeout = 5 * time.Second

// Tenants is a Gatherer of the tenants' series, relabelled.
func Tenants(scrape TenantScrape) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		ctx, cancel := context.WithTimeout(context.Background(), tenantScrapeTimeout)
		defer cancel()
		texts, errs := scrape(ctx)
		return Relabel(texts, errs)
	})
}

// Relabel merges the tenants' metrics texts into one set of families,
// every series labelled with its tenant, plus
// shoestring_tenant_scrape_ok per tenant (0 for those in errs). A text
// that does not parse counts as not scraped.
func Relabel(texts map[string][]byte, errs map[string]error) ([]*dto.MetricFamily, error) {
	ok := map[string]bool{}
	for n := range errs {
		ok[n] = false
	}
	fams := map[string]*dto.MetricFamily{}
	for _, name := range slices.Sorted(maps.Keys(texts)) {
		p := expfmt.NewTextParser(model.UTF8Validation)
		got, err := p.TextToMetricFamilies(bytes.NewReader(texts[name]))
		if err != nil {
			ok[name] = false
			continue
		}
		ok[name] = true
		for fname, f := range got {
			have := fams[fname]
			if have == nil {
				have = &dto.MetricFamily{Name: f.Name, Help: f.Help, Type: f.Type, Unit: f.Unit}
				fams[fname] = have
			} else if have.GetType() != f.GetType() {
				return nil, fmt.Errorf("tenant %s: %s is a %v, another tenant's a %v", name, fname, f.GetType(), have.GetType())
			}
			for _, m := range f.Metric {
				m.Label = slices.DeleteFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == TenantLabel })
				m.Label = append(m.Label, &dto.LabelPair{Name: strPtr(TenantLabel), Value: strPtr(name)})
				sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
				have.Metric = append(have.Metric, m)
			}
		}
	}
	up := &dto.MetricFamily{
		Name: strPtr("shoestring_tenant_scrape_ok"),
		Help: strPtr("Whether the host read the tenant's metrics at this scrape (0: not answering on its control socket, e.g. restarting)."),
		Type: dto.MetricType_GAUGE.Enum(),
	}
	for _, n := range slices.Sorted(maps.Keys(ok)) {
		v := 0.0
		if ok[n] {
			v = 1
		}
		up.Metric = append(up.Metric, &dto.Metric{
			Label: []*dto.LabelPair{{Name: strPtr(TenantLabel), Value: strPtr(n)}},
			Gauge: &dto.Gauge{Value: &v},
		})
	}
	out := []*dto.MetricFamily{up}
	for _, n := range slices.Sorted(maps.Keys(fams)) {
		if strings.HasPrefix(n, "shoestring_tenant_scrape_ok") {
			continue
		}
		out = append(out, fams[n])
	}
	return out, nil
}

func strPtr(s string) *string { return &s }
