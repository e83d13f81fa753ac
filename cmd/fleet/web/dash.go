package web

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/cmd/fleet/live"
	"github.com/shoestring-dns/shoestring/cmd/fleet/rollout"
)

// The dashboard: one server-rendered page that refreshes itself, so it
// needs no script and reads the same in a terminal browser.

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	ov, err := s.Overview(r.Context())
	if err != nil {
		fail(w, 500, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := dashTmpl.Execute(w, ov); err != nil {
		s.Log.Warn("dashboard", "err", err)
	}
}

var dashTmpl = template.Must(template.New("dash").Funcs(template.FuncMap{
	"ago":       ago,
	"spark":     spark,
	"short":     short,
	"roColour":  roColour,
	"waveDone":  waveDone,
	"nodeOf":    func(ro *rollout.Rollout, name string) *rollout.Node { return nodeOf(ro, name) },
	"gateClass": func(o string) string { return map[string]string{"pass": "green", "fail": "red"}[o] + " gate" },
	"sessions":  sessions,
	"prefixes":  prefixes,
	"slot":      slot,
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<title>Shoestring fleet — {{.Colour}}</title>
<style>
body{font:14px system-ui,sans-serif;margin:1em;background:#fafafa;color:#222}
.green{background:#d4f7d4}.amber{background:#ffe8a8}.red{background:#ffc4c4}
#overall{padding:.6em 1em;font-size:1.4em;font-weight:bold;border-radius:6px}
.tiles{display:flex;flex-wrap:wrap;gap:.8em}.site{border:1px solid #999;border-radius:6px;padding:.5em;min-width:16em}
.node{border-top:1px solid #bbb;padding:.3em 0}.k{color:#555}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
.gate{font-size:12px;padding:0 3px;border-radius:3px;margin-right:2px;display:inline-block}
svg{vertical-align:middle}
</style></head><body>
<div id="overall" class="{{.Colour}}" data-colour="{{.Colour}}">Fleet: {{.Colour}}</div>
{{with .Controller}}<p id="controller" data-role="{{.Role}}" data-leader="{{.Leader}}">{{if eq .Role "single"}}one controller, store {{.Store}}{{else}}controller <b>{{.Name}}</b>: {{.Role}}{{if ne .Role "leader"}} (read-only) — leader: <b>{{or .Leader "none (election under way)"}}</b>{{end}}; store {{.Store}}{{end}}</p>{{end}}
<h2>Exceptions</h2>
<ul id="exceptions">{{range .Exceptions}}<li>{{.}}</li>{{else}}<li>none</li>{{end}}</ul>
<h2>Rollouts</h2>
<div id="rollouts">{{range .Rollouts}}{{$ro := .}}
<div class="rollout {{roColour .State}}" data-id="{{.ID}}" data-state="{{.State}}">
<b>{{.ID}}</b> group {{.Group}}, release {{.Release}}: <b>{{.State}}</b>{{if .Halt}} — {{.Halt}}{{end}}
<table><tr><th>wave</th><th>progress</th><th>nodes and gates</th></tr>
{{range $i, $w := .Waves}}<tr class="wave"><td>{{$w.Name}}</td><td>{{waveDone $ro $i}}/{{len $w.Nodes}}</td><td>
{{range $w.Nodes}}{{with nodeOf $ro .}}<div class="ronode" data-node="{{.Name}}" data-state="{{.State}}">{{.Name}}: {{.State}}{{if .Waiting}} ({{.Waiting}}){{end}}{{if .Error}} — {{.Error}}{{end}}
{{range .Gates}}<span class="{{gateClass .Outcome}}" title="{{.Detail}}">{{.Gate}}: {{.Outcome}}</span>{{end}}</div>{{end}}{{end}}
</td></tr>{{end}}</table></div>
{{else}}<p>none</p>{{end}}</div>
<h2>Sites</h2>
<div class="tiles">{{range .Sites}}
<div class="site {{.Colour}}" data-site="{{.Name}}" data-colour="{{.Colour}}"><b>{{.Name}}</b>
{{range .Nodes}}<div class="node" data-node="{{.Name}}" data-colour="{{.Colour}}"><b>{{.Name}}</b> {{.Region}} {{.City}}<br>
<span class="k">firmware</span> {{.Live.Version}} {{slot .Live}}<br>
<span class="k">config</span> {{with .Live.Config}}gen {{.Generation}} {{short .Hash}}{{end}} — {{.Drift}}<br>
<span class="k">bgp</span> {{sessions .Live}}, {{prefixes .Live}}<br>
<span class="k">worst serial lag</span> {{.MaxLag}}<br>
<span class="k">qps</span> {{printf "%.1f" .Live.QPS}} {{spark .Live.History}}<br>
<span class="k">last contact</span> {{ago .Live.LastContact}}
{{range .Problems}}<div>⚠ {{.}}</div>{{end}}</div>{{end}}</div>{{end}}</div>
<h2>Serial check</h2>
<p>{{.Serials.Stale}} stale, {{.Serials.Unknown}} unknown</p>
<table id="serials"><tr><th>zone</th><th>node</th><th>serial</th><th>primary</th><th>reference</th><th>lag</th></tr>
{{range .Serials.Rows}}<tr class="{{if .Stale}}red{{else if not .Reference}}amber{{end}}"><td>{{.Zone}}</td><td>{{.Node}}</td><td>{{.Serial}}</td><td>{{.Primary}}</td><td>{{with .Reference}}{{.}}{{else}}? {{end}}</td><td>{{.Lag}}</td></tr>{{end}}
</table>
<h2>Catchment</h2>
{{with .Catchment}}<p id="catchment-info" data-id="{{.ID}}">measurement {{.ID}}{{if .Label}} ({{.Label}}){{end}}, {{.Started.Format "2006-01-02 15:04:05"}} UTC, took {{.Took}}: {{.Answered}} of {{len .Targets}} targets answered, {{len .Map}} prefixes; senders {{range .Senders}}{{.}} {{end}}</p>
{{range $n, $e := .NodeErrors}}<div class="amber">⚠ {{$n}}: {{$e}}</div>{{end}}
<table id="catchment"><tr><th>prefix</th><th>node</th><th>site</th><th>targets</th><th>split</th></tr>
{{range .Map}}<tr class="crow{{if .Split}} amber{{end}}" data-prefix="{{.Prefix}}" data-node="{{.Node}}"><td>{{.Prefix}}</td><td>{{.Node}}</td><td>{{.Site}}</td><td>{{.Targets}}</td><td>{{range $n, $c := .Split}}{{$n}}: {{$c}} {{end}}</td></tr>{{end}}
</table>{{else}}<p id="catchment-info">no measurement yet (<code>shoestring-fleet catchment run</code>)</p>{{end}}
<p class="k">generated {{.Generated.Format "15:04:05"}} UTC</p>
</body></html>
`))

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// spark draws the last hour of qps as a small line.
func spark(h []float64) template.HTML {
	if len(h) < 2 {
		return ""
	}
	max := 1.0
	for _, v := range h {
		if v > max {
			max = v
		}
	}
	var pts []string
	for i, v := range h {
		pts = append(pts, fmt.Sprintf("%d,%.1f", i*100/(len(h)-1), 20-v/max*20))
	}
	return template.HTML(`<svg width="100" height="20"><polyline fill="none" stroke="#36c" points="` + strings.Join(pts, " ") + `"/></svg>`)
}

func roColour(state string) string {
	switch state {
	case rollout.Halted, rollout.Kept, rollout.Reverted:
		return Red
	case rollout.Running, "reverting":
		return Amber
	}
	return Green
}

func waveDone(ro *rollout.Rollout, i int) int {
	c := 0
	for _, n := range ro.Nodes {
		if n.Wave == i && n.State == rollout.NodeDone {
			c++
		}
	}
	return c
}

func nodeOf(ro *rollout.Rollout, name string) *rollout.Node {
	for _, n := range ro.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func sessions(s live.State) string {
	up := 0
	for _, x := range s.Sessions {
		if strings.EqualFold(x.State, "established") {
			up++
		}
	}
	return fmt.Sprintf("%d/%d sessions", up, len(s.Sessions))
}

func prefixes(s live.State) string {
	up := 0
	for _, p := range s.Prefixes {
		if p.State == "announced" {
			up++
		}
	}
	return fmt.Sprintf("%d/%d prefixes", up, len(s.Prefixes))
}

func slot(s live.State) string {
	if s.Slots == nil {
		return ""
	}
	return "slot " + s.Slots.Booted
}
