package metrics

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
)

// nodeCollector turns the node's state into metrics at scrape time.
type nodeCollector struct {
	src Sources
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// The metrics the node collector exports. Descriptions are built once per
// collector value (they are immutable), not kept in package variables.
type descs struct {
	queries, responses, unanswered, latency, fast, dropped, tcpConns, ready *prometheus.Desc
	cookies, rrlLimited, tcpRefusedPerClient                                *prometheus.Desc

	zoneSerial, zoneServed, zoneAge, zoneRecords, zoneServing, zoneProblem *prometheus.Desc
	zoneLastCheck, zoneExpires                                             *prometheus.Desc

	bgpConfigured, sessionUp, sessionState, prefixesSent, routesReceived, prefixAnnounced, bfdUp *prometheus.Desc

	checkOK, checkFails                                           *prometheus.Desc
	secTransfers, secFailures, secExpired, outTransfers, notifies *prometheus.Desc
	tailnetUp                                                     *prometheus.Desc
	healthOK                                                      *prometheus.Desc
	tapConnected, tapSent, tapDropped                             *prometheus.Desc
	memLimit, memRefused                                          *prometheus.Desc
}

func newDescs() *descs {
	return &descs{
		queries:             desc("shoestring_dns_queries_total", "DNS queries received, by protocol and query type.", "protocol", "qtype"),
		responses:           desc("shoestring_dns_responses_total", "DNS responses sent, by zone (empty outside any zone served), protocol and rcode.", "zone", "protocol", "rcode"),
		unanswered:          desc("shoestring_dns_unanswered_total", "DNS queries that got no response, by protocol.", "protocol"),
		latency:             desc("shoestring_dns_response_duration_seconds", "Time from receiving a query to sending its response, by protocol.", "protocol"),
		fast:                desc("shoestring_dns_fast_path_total", "Queries answered from precomputed responses."),
		dropped:             desc("shoestring_dns_dropped_total", "Datagrams dropped unanswered (malformed, truncated, or refused by the kernel on send)."),
		tcpConns:            desc("shoestring_dns_tcp_connections", "Open DNS TCP connections."),
		ready:               desc("shoestring_ready", "1 once the node answers queries and its API is up."),
		cookies:             desc("shoestring_dns_cookies_total", "DNS queries by cookie state (client_only, invalid, valid), and BADCOOKIE replies sent (badcookie).", "state"),
		rrlLimited:          desc("shoestring_dns_rrl_limited_total", "UDP replies response rate limiting slipped (sent truncated or BADCOOKIE) or dropped, by response class.", "class", "action"),
		tcpRefusedPerClient: desc("shoestring_dns_tcp_refused_per_client_total", "TCP connections closed at once because their client prefix held dns.tcp_max_conns_per_client already."),

		zoneSerial:    desc("shoestring_zone_serial", "The zone's SOA serial in the store.", "zone"),
		zoneServed:    desc("shoestring_zone_served_serial", "The serial of the snapshot queries for the zone are answered from now.", "zone"),
		zoneAge:       desc("shoestring_zone_age_seconds", "Time since the zone's data last changed in the store.", "zone"),
		zoneRecords:   desc("shoestring_zone_records", "Records in the zone.", "zone"),
		zoneServing:   desc("shoestring_zone_serving", "1 when the zone is served, 0 when it is stored but not served.", "zone"),
		zoneProblem:   desc("shoestring_zone_problem", "1 when the zone has a problem (rejected update, failing transfers).", "zone"),
		zoneLastCheck: desc("shoestring_zone_last_check_age_seconds", "Time since a secondary zone was last checked successfully against its primary.", "zone"),
		zoneExpires:   desc("shoestring_zone_expires_in_seconds", "Time until a secondary zone expires (SOA expire) unless refreshed.", "zone"),

		bgpConfigured:   desc("shoestring_bgp_configured", "1 when the node runs a BGP speaker."),
		sessionUp:       desc("shoestring_bgp_session_up", "1 when the BGP session is established.", "peer", "address"),
		sessionState:    desc("shoestring_bgp_session_state", "The BGP session's state: 1 for the state it is in.", "peer", "state"),
		prefixesSent:    desc("shoestring_bgp_prefixes_announced", "Prefixes announced to the peer now.", "peer"),
		routesReceived:  desc("shoestring_bgp_routes_received", "Prefixes the peer announces to us now (counted, not kept).", "peer"),
		prefixAnnounced: desc("shoestring_bgp_prefix_announced", "1 when the service prefix is announced (also while draining), 0 when withdrawn.", "prefix", "state"),
		bfdUp:           desc("shoestring_bfd_session_up", "1 when the BFD session is up.", "peer"),

		checkOK:    desc("shoestring_health_check_ok", "1 when the health check of the service prefix passes.", "prefix"),
		checkFails: desc("shoestring_health_check_consecutive_failures", "Consecutive failing rounds of the prefix's health check.", "prefix"),

		secTransfers: desc("shoestring_secondary_transfers_total", "Transfers of a secondary zone from its primaries, by kind (axfr, ixfr, rejected: received but failed validation).", "zone", "kind"),
		secFailures:  desc("shoestring_secondary_refresh_failures", "Consecutive failed refreshes of the secondary zone.", "zone"),
		secExpired:   desc("shoestring_secondary_expired", "1 when the secondary zone is past its SOA expire (answered SERVFAIL).", "zone"),
		outTransfers: desc("shoestring_outbound_transfers_total", "Transfers served to downstream servers, by result (axfr, ixfr, refused).", "result"),
		notifies:     desc("shoestring_outbound_notifies_total", "NOTIFY messages sent downstream."),

		tailnetUp: desc("shoestring_tailnet_up", "1 when the node runs on the tailnet."),
		healthOK:  desc("shoestring_health_ok", "1 when the part of the node's health is good: serving, zones_fresh, bgp, management.", "part"),

		tapConnected: desc("shoestring_dnstap_connected", "1 while connected to the dnstap collector."),
		tapSent:      desc("shoestring_dnstap_sent_total", "Query/response pairs sent to the dnstap collector."),
		memLimit:     desc("shoestring_memory_limit_bytes", "The node's memory budget (dns.memory_limit); 0 when there is none."),
		memRefused:   desc("shoestring_zones_refused_memory_total", "New zone versions and transfers refused because they would take the node past its memory budget."),

		tapDropped: desc("shoestring_dnstap_dropped_total", "Query/response pairs not sent: the collector was slow or unreachable, or the pair too large to copy."),
	}
}

// Describe sends nothing: the collector is unchecked, because which
// metrics exist depends on the subsystems this node runs.
func (c *nodeCollector) Describe(chan<- *prometheus.Desc) {}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	d := newDescs()
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, labels...)
	}
	b01 := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	if c.src.Ready != nil {
		gauge(d.ready, b01(c.src.Ready()))
	}
	if c.src.DNS != nil {
		q := c.src.DNS()
		for proto, byType := range q.ByType {
			for qt, v := range byType {
				counter(d.queries, float64(v), proto, qt)
			}
		}
		for zone, byProto := range q.Zones {
			for proto, byRcode := range byProto {
				for rc, v := range byRcode {
					counter(d.responses, float64(v), zone, proto, rc)
				}
			}
		}
		for proto, v := range q.Unanswered {
			counter(d.unanswered, float64(v), proto)
		}
		for state, v := range q.Cookies {
			counter(d.cookies, float64(v), state)
		}
		for class, byAction := range q.RRL {
			for action, v := range byAction {
				counter(d.rrlLimited, float64(v), class, action)
			}
		}
		counter(d.tcpRefusedPerClient, float64(q.TCPRefusedPerClient))
		bounds := dnsserver.LatencyBounds()
		for proto, h := range q.Latency {
			buckets := make(map[float64]uint64, len(bounds))
			for i, b := range bounds {
				buckets[b] = h.Buckets[i]
			}
			ch <- prometheus.MustNewConstHistogram(d.latency, h.Count, h.Sum.Seconds(), buckets, proto)
		}
		for zone, serial := range q.Serials {
			gauge(d.zoneServed, float64(serial), zone)
		}
	}
	if c.src.DNSStats != nil {
		st := c.src.DNSStats()
		counter(d.fast, float64(st.Fast.Load()))
		counter(d.dropped, float64(st.Dropped.Load()))
		gauge(d.tcpConns, float64(st.TCPConns.Load()))
	}
	fresh, expires := map[string]time.Time{}, map[string]time.Time{}
	if c.src.Overview != nil {
		o := c.src.Overview()
		gauge(d.bgpConfigured, b01(o.Routing != nil && len(o.Routing.Sessions) > 0))
		if r := o.Routing; r != nil {
			for _, s := range r.Sessions {
				gauge(d.sessionUp, b01(s.State == "established"), s.Name, s.Address)
				gauge(d.sessionState, 1, s.Name, s.State)
				gauge(d.prefixesSent, float64(s.PrefixesSent), s.Name)
				gauge(d.routesReceived, float64(s.RoutesReceived), s.Name)
			}
			for _, p := range r.Prefixes {
				gauge(d.prefixAnnounced, b01(p.State != "withdrawn"), p.Prefix, p.State)
				gauge(d.checkOK, b01(p.Healthy), p.Prefix)
				gauge(d.checkFails, float64(p.Fails), p.Prefix)
			}
			for _, b := range r.BFD {
				gauge(d.bfdUp, b01(strings.EqualFold(b.State, "up")), b.Name)
			}
		}
		if s := o.Secondary; s != nil {
			for _, z := range s.Zones {
				counter(d.secTransfers, float64(z.AXFRs), z.Origin, "axfr")
				counter(d.secTransfers, float64(z.IXFRs), z.Origin, "ixfr")
				counter(d.secTransfers, float64(z.Rejected), z.Origin, "rejected")
				gauge(d.secFailures, float64(z.Failures), z.Origin)
				gauge(d.secExpired, b01(z.Expired), z.Origin)
				fresh[z.Origin], expires[z.Origin] = z.LastSuccess, z.ExpiresAt
			}
			counter(d.outTransfers, float64(s.Outbound.AXFRs), "axfr")
			counter(d.outTransfers, float64(s.Outbound.IXFRs), "ixfr")
			counter(d.outTransfers, float64(s.Outbound.Refused), "refused")
			counter(d.notifies, float64(s.Outbound.Notifies))
		}
		if o.Tailnet != nil {
			gauge(d.tailnetUp, b01(o.Tailnet.State == "running"))
		}
		if h := o.Health; h != nil {
			for _, p := range h.Parts {
				gauge(d.healthOK, b01(p.OK), p.Name)
			}
		}
		if t := o.Dnstap; t != nil {
			gauge(d.tapConnected, b01(t.Connected))
			counter(d.tapSent, float64(t.Sent))
			counter(d.tapDropped, float64(t.Dropped))
		}
		if m := o.Budget; m != nil {
			gauge(d.memLimit, float64(m.LimitBytes))
			counter(d.memRefused, float64(m.Refused))
		}
	}
	if c.src.Zones != nil {
		zs, err := c.src.Zones()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(d.zoneSerial, err)
			return
		}
		now := time.Now()
		for _, z := range zs {
			gauge(d.zoneSerial, float64(z.Serial), z.Origin)
			gauge(d.zoneRecords, float64(z.Records), z.Origin)
			gauge(d.zoneServing, b01(z.Serving), z.Origin)
			gauge(d.zoneProblem, b01(z.Problem != ""), z.Origin)
			if !z.Updated.IsZero() {
				gauge(d.zoneAge, now.Sub(z.Updated).Seconds(), z.Origin)
			}
			if t := fresh[z.Origin]; !t.IsZero() {
				gauge(d.zoneLastCheck, now.Sub(t).Seconds(), z.Origin)
			}
			if t := expires[z.Origin]; !t.IsZero() {
				gauge(d.zoneExpires, t.Sub(now).Seconds(), z.Origin)
			}
		}
	}
}
