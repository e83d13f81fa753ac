package live

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// Traffic is a node's DNS response counters at one moment, from its
// /metrics (shoestring_dns_responses_total, summed over zones and
// protocols).
type Traffic struct {
	At        time.Time `json:"at"`
	Responses uint64    `json:"responses"`
	Servfails uint64    `json:"servfails"`
}

// Rate is the traffic between two samples.
type Rate struct {
	Window    float64 `json:"window_s"`
	QPS       float64 `json:"answered_qps"`
	Responses uint64  `json:"responses"`
	Servfails uint64  `json:"servfails"`
}

// ServfailShare is the fraction of responses that were SERVFAIL (0
// without responses).
func (r Rate) ServfailShare() float64 {
	if r.Responses == 0 {
		return 0
	}
	return float64(r.Servfails) / float64(r.Responses)
}

// RateBetween is the traffic from a to b; false when either is missing,
// b is not later, or a counter went down (the node restarted between).
func RateBetween(a, b *Traffic) (Rate, bool) {
	if a == nil || b == nil || !b.At.After(a.At) || b.Responses < a.Responses || b.Servfails < a.Servfails {
		return Rate{}, false
	}
	w := b.At.Sub(a.At).Seconds()
	n := b.Responses - a.Responses
	return Rate{Window: w, QPS: float64(n) / w, Responses: n, Servfails: b.Servfails - a.Servfails}, true
}

const responsesMetric = "shoestring_dns_responses_total{"

// readTraffic scrapes the node's /metrics.
func readTraffic(c *api.Client) (*Traffic, error) {
	resp, err := c.HTTP.Get(c.Base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	t := &Traffic{At: time.Now()}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	seen := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, responsesMetric) {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics: %q: %v", line, err)
		}
		seen = true
		t.Responses += uint64(v)
		if strings.Contains(line[:end], `rcode="SERVFAIL"`) {
			t.Servfails += uint64(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !seen && !strings.Contains(resp.Header.Get("Content-Type"), "text/plain") {
		return nil, fmt.Errorf("/metrics: not Prometheus text")
	}
	return t, nil
}
