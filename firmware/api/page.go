package api

import (
	"html/template"
	"net/http"
)

// The status page is one server-rendered HTML page with no scripts: it
// must work through any tunnel and in any browser, and a person should see
// green, amber or red before reading a word.
// Sections beyond the zones are in page_overview.go.
var pageTmpl = template.Must(template.New("page").Funcs(pageFuncs()).Parse(overviewSections + `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.S.Name}} — Shoestring</title>
<meta http-equiv="refresh" content="10">
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{margin:0 0 .2em} .sub{color:#666;margin-bottom:1.5em}
table{border-collapse:collapse;margin:1em 0;min-width:40em} th,td{padding:.3em .8em;text-align:left;border-bottom:1px solid #ddd}
th{background:#f4f4f4} .num{text-align:right;font-variant-numeric:tabular-nums}
.dot{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.4em}
.green{background:#2a2} .amber{background:#e90} .red{background:#d22}
.problems{background:#fee;border:1px solid #d22;padding:.5em 1em}
td.log{font-family:ui-monospace,monospace;font-size:13px;white-space:pre-wrap}
</style></head><body>
<h1><span class="dot {{.Overall}}"></span>{{.S.Name}}</h1>
<div class="sub" id="identity">{{if .S.Location}}<span id="location">{{.S.Location}}</span> · {{end}}{{with .O.Tailnet}}{{.Name}} · {{end}}{{with .O.Version}}version {{.}} · {{end}}up {{.S.Uptime}} · {{.S.Zones}} zones · {{.S.Queries}} queries · DNS on {{range $i, $a := .S.Listen}}{{if $i}}, {{end}}{{$a}}{{end}}</div>
{{if .S.Problems}}<div class="problems" id="problems"><b>Problems</b><ul>{{range .S.Problems}}<li>{{.}}</li>{{end}}</ul></div>{{end}}
{{template "health" .}}
<h2>Zones</h2>
<table id="zones"><tr><th>Zone</th><th class="num">Serial</th><th class="num">Records</th><th>Updated</th><th>Source</th><th>Freshness</th><th>State</th></tr>
{{range .Zones}}<tr><td>{{.Origin}}</td><td class="num">{{.Serial}}{{if and .Serving (ne .ServedSerial .Serial)}} (serving {{.ServedSerial}}){{end}}</td><td class="num">{{.Records}}</td><td>{{ago .Updated}}</td><td>{{.Source}}</td>
<td>{{with index $.Fresh .Origin}}checked {{ago .LastSuccess}}, expires {{until .ExpiresAt}}{{if .LastError}}; {{.LastError}}{{end}}{{else}}changed {{ago .Updated}}{{end}}</td>
<td><span class="dot {{$.ZoneColor .}}"></span>{{if .Problem}}{{.Problem}}{{else if .Serving}}serving{{else}}not served{{end}}</td></tr>
{{else}}<tr><td colspan="7">No zones yet. Upload one: <code>shoestring ctl put ORIGIN FILE</code></td></tr>{{end}}
</table>
{{template "routing" .}}
{{template "overlay" .}}
</body></html>`))

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	zs, err := ZoneList(h.zs)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	d := &pageData{S: h.b.Status(), Zones: zs}
	if o, ok := h.b.(Overviewer); ok {
		d.O = o.Overview()
	}
	d.Fresh = map[string]*SecondaryZone{}
	if d.O.Secondary != nil {
		for i, z := range d.O.Secondary.Zones {
			d.Fresh[z.Origin] = &d.O.Secondary.Zones[i]
		}
	}
	if c, ok := CallerFrom(r.Context()); ok {
		d.Caller = &c
	}
	healthy, _ := h.b.Healthy()
	d.Overall = d.overall(healthy)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTmpl.Execute(w, d)
}
