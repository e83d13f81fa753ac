package api

import (
	"html/template"
	"strings"
	"time"
)

// The status page's sections beyond the zones: the node's health by part,
// BGP sessions, prefixes and
// their health checks, the tailnet, dnstap and recent log lines. Each
// section is there whether or not its subsystem runs on the node, saying so
// when it does not, so a person never wonders whether a section is missing
// or merely empty.

// pageData is what the status page template renders.
type pageData struct {
	S       Status
	Zones   []ZoneInfo
	Overall string
	O       Overview
	Fresh   map[string]*SecondaryZone // secondary zones by origin
	Caller  *Caller
}

// ZoneColor is a zone's dot: red when it is not served or has expired,
// amber when something needs a look, green otherwise.
func (d *pageData) ZoneColor(z ZoneInfo) string {
	sz := d.Fresh[z.Origin]
	switch {
	case !z.Serving || (sz != nil && sz.Expired):
		return "red"
	case z.Problem != "" || (sz != nil && (sz.Failures > 0 || sz.LastError != "")) || z.ServedSerial != z.Serial:
		return "amber"
	}
	return "green"
}

// overall is the page's one colour: red when the node is not healthy, no
// zone is served, every BGP session is down or a prefix's health check
// fails; amber when something needs a look; green otherwise.
func (d *pageData) overall(healthy bool) string {
	red, amber := !healthy, len(d.S.Problems) > 0
	served := 0
	for _, z := range d.Zones {
		if d.ZoneColor(z) != "green" {
			amber = true
		}
		if z.Serving {
			served++
		}
	}
	if len(d.Zones) > 0 && served == 0 {
		red = true
	}
	if r := d.O.Routing; r != nil {
		up := 0
		for _, s := range r.Sessions {
			if s.State == "established" {
				up++
			} else {
				amber = true
			}
		}
		if len(r.Sessions) > 0 && up == 0 {
			red = true
		}
		for _, p := range r.Prefixes {
			if !p.Healthy && !p.Maintenance {
				red = true
			}
			if p.State != "announced" {
				amber = true
			}
		}
	}
	if h := d.O.Health; h != nil && !h.OK {
		amber = true
	}
	if t := d.O.Tailnet; t != nil && t.State != "running" {
		amber = true
	}
	if t := d.O.Dnstap; t != nil && !t.Connected {
		amber = true
	}
	switch {
	case red:
		return "red"
	case amber:
		return "amber"
	}
	return "green"
}

func pageFuncs() template.FuncMap {
	return template.FuncMap{
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return time.Since(t).Round(time.Second).String() + " ago"
		},
		"until": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			d := time.Until(t).Round(time.Second)
			if d < 0 {
				return "expired " + (-d).String() + " ago"
			}
			return "in " + d.String()
		},
		"clock": func(t time.Time) string { return t.Format("15:04:05") },
		"sessionColor": func(s BGPSession) string {
			switch s.State {
			case "established":
				return "green"
			case "idle", "held down":
				return "red"
			}
			return "amber"
		},
		"prefixColor": func(p Prefix) string {
			switch {
			case p.State == "announced" && p.Healthy:
				return "green"
			case p.State == "withdrawn" && !p.Maintenance:
				return "red"
			}
			return "amber"
		},
		"levelColor": func(level string) string {
			switch {
			case strings.HasPrefix(level, "ERROR"):
				return "red"
			case strings.HasPrefix(level, "WARN"):
				return "amber"
			}
			return ""
		},
		"join": strings.Join,
		"mib":  func(b int64) int64 { return b >> 20 },
	}
}

// overviewSections are the templates the page includes after the zones
// (health: before them).
const overviewSections = `
{{define "health"}}
{{with .O.Health}}
<table id="health"><tr><th>Health</th><th>Why</th></tr>
{{range .Parts}}<tr><td><span class="dot {{if .OK}}green{{else}}red{{end}}"></span>{{.Name}}</td><td>{{.Why}}</td></tr>
{{end}}</table>
{{end}}
{{end}}
{{define "routing"}}
<h2>BGP</h2>
{{with .O.Routing}}
<table id="bgp"><tr><th>Peer</th><th>Address</th><th class="num">AS</th><th>State</th><th>Since</th><th class="num">Prefixes sent</th><th class="num">Routes received</th><th>Last error</th></tr>
{{range .Sessions}}<tr><td>{{.Name}}</td><td>{{.Address}}</td><td class="num">{{.RemoteASN}}</td><td><span class="dot {{sessionColor .}}"></span>{{.State}}{{if .BFD}} (BFD {{.BFD}}){{end}}</td><td>{{ago .Since}}</td><td class="num">{{.PrefixesSent}}</td><td class="num">{{.RoutesReceived}}</td><td>{{.LastError}}</td></tr>
{{else}}<tr><td colspan="8">No BGP sessions configured.</td></tr>{{end}}
</table>
<h2>Prefixes and health checks</h2>
<table id="prefixes"><tr><th>Prefix</th><th>State</th><th>Health check</th><th>Checked</th><th>Reason</th></tr>
{{range .Prefixes}}<tr><td>{{.Prefix}}</td><td><span class="dot {{prefixColor .}}"></span>{{.State}}{{if .Maintenance}} (maintenance){{end}}</td>
<td>{{if .Healthy}}<span class="dot green"></span>passing{{else}}<span class="dot red"></span>failing{{end}} ({{.Passes}} pass, {{.Fails}} fail) {{.Query}}{{if .Targets}} → {{join .Targets ", "}}{{end}}</td>
<td>since {{ago .Since}}</td><td>{{.Reason}}{{if .LastError}} — {{.LastError}}{{end}}</td></tr>
{{else}}<tr><td colspan="5">No prefixes announced.</td></tr>{{end}}
</table>
{{else}}
<p id="bgp">BGP is not configured on this node: it announces nothing and has no health checks.</p>
{{end}}
{{end}}

{{define "overlay"}}
<h2>Tailnet</h2>
{{with .O.Tailnet}}
<table id="tailnet"><tr><th>This node</th><td><span class="dot {{if eq .State "running"}}green{{else}}amber{{end}}"></span>{{.Name}} {{join .IPs ", "}} — {{.State}}{{if .Error}} ({{.Error}}){{end}}</td></tr>
{{if .Control}}<tr><th>Control</th><td>{{.Control}}</td></tr>{{end}}
{{range .Peers}}<tr><th>Peer</th><td><span class="dot {{if .Online}}green{{else}}amber{{end}}"></span>{{.Name}} {{join .IPs ", "}}{{if .Tags}} {{join .Tags " "}}{{end}}</td></tr>{{end}}
</table>
{{else}}
<p id="tailnet">Not on a tailnet: management listens on loopback only (dev mode).</p>
{{end}}
<h2>Memory</h2>
{{with .O.Budget}}
<p id="memory"><span class="dot {{if .Refused}}amber{{else}}green{{end}}"></span>{{mib .HeapBytes}} MiB in use{{if .LimitBytes}} of a budget of {{mib .LimitBytes}} MiB (dns.memory_limit){{else}}, no budget (dns.memory_limit -1){{end}}; {{.Refused}} zone versions refused for it since start</p>
{{else}}
<p id="memory">Not reported.</p>
{{end}}
<h2>dnstap</h2>
{{with .O.Dnstap}}
<p id="dnstap"><span class="dot {{if .Connected}}green{{else}}amber{{end}}"></span>to {{.Target}}: {{if .Connected}}connected{{else}}not connected{{if .Error}} ({{.Error}}){{end}}{{end}}, {{.Sent}} sent, {{.Dropped}} dropped</p>
{{else}}
<p id="dnstap">Off.</p>
{{end}}
<h2>Recent log</h2>
<table id="logs"><tr><th>Time</th><th>Level</th><th>Message</th></tr>
{{range .O.Logs}}<tr><td>{{clock .Time}}</td><td>{{with levelColor .Level}}<span class="dot {{.}}"></span>{{end}}{{.Level}}</td><td class="log">{{.Message}}</td></tr>
{{else}}<tr><td colspan="3">Nothing logged yet.</td></tr>{{end}}
</table>
{{with .Caller}}<p class="sub" id="viewer">You are {{.}}, {{if .Role}}role {{.Role}}{{else}}no role{{end}}.</p>{{end}}
{{end}}
`
