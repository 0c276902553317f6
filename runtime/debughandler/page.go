package debughandler

import (
	"html/template"
	"strconv"
	"time"
)

// pageData is what the page template renders.
type pageData struct {
	Snapshot
	Refresh int // seconds; 0: no reload
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"us":    fmtMicros,
	"ratio": fmtRatio,
	"bytes": fmtBytes,
	"num":   fmtInt,
	"rate":  fmtRate,
	"clock": func(t time.Time) string { return t.Format("15:04:05") },
	"secs": func(s float64) string {
		return time.Duration(s * float64(time.Second)).Round(time.Second).String()
	},
	"ago": func(now, t time.Time) string {
		return now.Sub(t).Round(time.Second).String()
	},
	"errs": func(r Row) int64 {
		return r.Errors + r.DecodeErrors + r.EncodeErrors + r.InvalidateErrors + r.Unrendered
	},
	"ratioval": func(p *float64) float64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"share": func(n, of int64) float64 {
		if of <= 0 {
			return 0
		}
		return float64(n) / float64(of)
	},
}).Parse(pageHTML))

// fmtMicros formats microseconds for a reader: "57µs", "1.3ms", "2.1s".
func fmtMicros(us float64) string {
	switch {
	case us <= 0:
		return "–"
	case us < 1:
		return strconv.FormatFloat(us*1000, 'f', 0, 64) + "ns"
	case us < 1000:
		return strconv.FormatFloat(us, 'f', 0, 64) + "µs"
	case us < 1e6:
		return strconv.FormatFloat(us/1e3, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(us/1e6, 'f', 2, 64) + "s"
}

// fmtRatio formats a hit ratio as a percentage, "–" before any read.
func fmtRatio(p *float64) string {
	if p == nil {
		return "–"
	}
	return strconv.FormatFloat(*p*100, 'f', 1, 64) + "%"
}

// fmtBytes formats a byte count in binary units.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n), 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + [...]string{"B", "KiB", "MiB", "GiB", "TiB"}[i]
}

// fmtInt groups digits by three with thin spaces.
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, "\u2009"...)
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// fmtRate formats requests per second.
func fmtRate(r float64) string {
	switch {
	case r == 0:
		return "0"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 2, 64)
	}
	return strconv.FormatFloat(r, 'f', 0, 64)
}

// pageHTML is the page: server-rendered, its style inline, no script and
// no reference to any other origin.
const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if gt .Refresh 0}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<title>repocache · live</title>
<style>
:root { --fg:#1d2430; --muted:#5c6778; --line:#dde2ea; --bg:#f6f7f9; --card:#fff; --ok:#1a7f37; --bad:#c62828; --warn:#9a6700; --accent:#2457c5; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
header { background: #1d2430; color: #fff; padding: 12px 24px; display: flex; align-items: baseline; gap: 18px; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; font-weight: 600; }
header .meta { color: #b8c2d3; font-size: 13px; }
header a { color: #9cc0ff; }
main { padding: 16px 24px 32px; }
section.cache { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px; margin-bottom: 20px; }
h2 { font-size: 17px; margin: 0 0 12px; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
h2 code { font-size: 16px; }
h3 { font-size: 14px; margin: 18px 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.badge { font-size: 12px; font-weight: 600; padding: 2px 8px; border-radius: 10px; border: 1px solid; }
.badge.ok { color: var(--ok); border-color: var(--ok); }
.badge.bad { color: #fff; background: var(--bad); border-color: var(--bad); }
.badge.warn { color: var(--warn); border-color: var(--warn); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin-bottom: 8px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; min-width: 120px; }
.card .k { font-size: 12px; color: var(--muted); }
.card .v { font-size: 16px; font-weight: 600; font-variant-numeric: tabular-nums; }
.alert { border-left: 4px solid var(--bad); background: #fdecea; padding: 8px 12px; margin: 8px 0; }
.note { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 13px; }
th, td { padding: 4px 6px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { font-size: 12px; color: var(--muted); font-weight: 600; vertical-align: bottom; white-space: normal; }
th.l, td.l { text-align: left; }
td.name { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
td.name .shape { color: var(--muted); }
tfoot td { font-weight: 600; border-top: 2px solid var(--line); }
tr.group th { text-align: center; border-bottom: none; padding-bottom: 0; }
meter { width: 48px; height: 10px; vertical-align: middle; }
table.tags { width: auto; min-width: 40%; }
.bad { color: var(--bad); }
.scroll { overflow-x: auto; }
</style>
</head>
<body>
<header>
<h1>repocache · live cache page</h1>
<span class="meta">at {{clock .At}} · up {{secs .UptimeSeconds}} · rates over the last {{printf "%.0f" .WindowSeconds}}s ·
{{if gt .Refresh 0}}reloads every {{.Refresh}}s (<a href="?refresh=0">stop</a>){{else}}not reloading (<a href="?">reload every few seconds</a>){{end}} ·
<a href="?format=json">JSON</a></span>
</header>
<main>
{{range .Caches}}
<section class="cache" id="ns-{{.Namespace}}">
<h2>namespace <code>{{.Namespace}}</code>
{{with .Server}}{{if eq .Breaker "open"}}<span class="badge bad">breaker open: Redis bypassed</span>{{else}}<span class="badge ok">breaker closed</span>{{end}}
{{if .Error}}<span class="badge bad">Redis unreachable</span>{{end}}
{{if .EvictingTagSets}}<span class="badge warn">evicting tag sets</span>{{end}}{{end}}
{{if not .Watched}}<span class="badge warn">no Cache given to Watch</span>{{end}}
</h2>
{{with .Server}}
{{if .Error}}<div class="alert">Redis could not be read: {{.Error}}</div>{{end}}
<div class="cards server">
<div class="card"><div class="k">used memory</div><div class="v">{{if .UsedMemoryBytes}}{{bytes .UsedMemoryBytes}}{{else}}–{{end}}</div>{{if and .Masters (not .UsedMemoryBytes)}}<div class="note">not reported by this server</div>{{end}}</div>
<div class="card"><div class="k">evicted keys</div><div class="v{{if .EvictedKeys}} bad{{end}}">{{if .Masters}}{{num .EvictedKeys}}{{else}}–{{end}}</div></div>
<div class="card"><div class="k">maxmemory policy</div><div class="v">{{or .MaxmemoryPolicy "–"}}</div></div>
<div class="card"><div class="k">servers read</div><div class="v">{{.Masters}}</div></div>
<div class="card"><div class="k">breaker</div><div class="v{{if eq .Breaker "open"}} bad{{end}}">{{.Breaker}}</div><div class="note">{{.BreakerOpens}} opened, {{num .BreakerSkips}} skipped</div></div>
<div class="card"><div class="k">connections</div><div class="v">{{.PoolConns}}</div><div class="note">{{.PoolIdle}} idle, {{.PoolTimeouts}} timeouts</div></div>
{{with .Reconnects}}<div class="card"><div class="k">reconnects</div><div class="v">{{num .}}</div></div>{{end}}
<div class="card"><div class="k">retries pending</div><div class="v{{if .InvalidationRetries}} bad{{end}}">{{.InvalidationRetries}}</div></div>
</div>
{{end}}
{{if .Rows}}
<div class="scroll">
<table class="methods">
<thead>
<tr class="group"><th></th><th colspan="3"></th><th colspan="4">hits</th><th></th><th colspan="7">loads</th><th colspan="2">invalidations</th><th></th></tr>
<tr><th class="l">method</th><th>req/s</th><th>requests</th><th>hit ratio</th><th>hits</th><th>p50</th><th>p90</th><th>p99</th><th>misses</th><th>loads</th><th title="answered not found (cached with negative=)">not found</th><th>errors</th><th>stored</th><th>p50</th><th>p90</th><th>p99</th><th title="invalidation calls, of which of a tag">calls (tags)</th><th>keys</th><th>stale / errors</th></tr>
</thead>
<tbody>
{{range .Rows}}<tr class="method">
<td class="l name">{{if .Method}}{{.Name}}{{else}}<span class="shape" title="the call named no method: its key shape">{{.Name}}</span>{{end}}</td>
<td>{{rate .RequestsPerSecond}}</td>
<td>{{num .Requests}}</td>
<td class="ratio">{{ratio .HitRatio}} {{if .HitRatio}}<meter min="0" max="1" low="0.5" optimum="1" value="{{ratioval .HitRatio}}"></meter>{{end}}</td>
<td class="hits">{{num .Hits}}{{if .L1Hits}} <span class="note">(L1 {{num .L1Hits}})</span>{{end}}</td>
<td>{{us .HitLatency.P50}}</td><td>{{us .HitLatency.P90}}</td><td>{{us .HitLatency.P99}}</td>
<td>{{num .Misses}}</td>
<td>{{num .Loads}}</td>
<td>{{num .NotFound}}</td>
<td{{if .LoadErrors}} class="bad"{{end}}>{{num .LoadErrors}}</td>
<td>{{num .Sets}}</td>
<td>{{us .LoadLatency.P50}}</td><td>{{us .LoadLatency.P90}}</td><td>{{us .LoadLatency.P99}}</td>
<td>{{num .Invalidations}} ({{num .TagInvalidations}})</td>
<td>{{num .InvalidatedKeys}}</td>
<td{{if errs .}} class="bad"{{end}} title="{{.Errors}} Redis, {{.DecodeErrors}} decode, {{.EncodeErrors}} encode, {{.InvalidateErrors}} invalidation, {{.Unrendered}} unrendered errors; {{.StaleSetsPrevented}} stale sets prevented">{{num .StaleServes}} / {{num (errs .)}}</td>
</tr>
{{end}}
</tbody>
<tfoot>{{with .Total}}<tr>
<td class="l">total</td>
<td>{{rate .RequestsPerSecond}}</td>
<td>{{num .Requests}}</td>
<td>{{ratio .HitRatio}}</td>
<td>{{num .Hits}}</td>
<td>{{us .HitLatency.P50}}</td><td>{{us .HitLatency.P90}}</td><td>{{us .HitLatency.P99}}</td>
<td>{{num .Misses}}</td>
<td>{{num .Loads}}</td>
<td>{{num .NotFound}}</td>
<td>{{num .LoadErrors}}</td>
<td>{{num .Sets}}</td>
<td>{{us .LoadLatency.P50}}</td><td>{{us .LoadLatency.P90}}</td><td>{{us .LoadLatency.P99}}</td>
<td>{{num .Invalidations}} ({{num .TagInvalidations}})</td>
<td>{{num .InvalidatedKeys}}</td>
<td>{{num .StaleServes}} / {{num (errs .)}}</td>
</tr>{{end}}</tfoot>
</table>
</div>
<p class="note">Counts since the page's handler started; latencies are percentiles of hits (Redis round trip and decode) and of loads (the source), each within 6%. A grey name is a key shape: the call named no repository method.</p>
{{else}}
<p class="note">No cache event yet.</p>
{{end}}
{{with .Tags}}
<h3>largest tags</h3>
{{if .Error}}<p class="note bad">{{.Error}}</p>{{end}}
{{if .Top}}{{$top := (index .Top 0).Keys}}
<table class="tags">
<thead><tr><th class="l">tag</th><th>keys</th><th class="l"></th></tr></thead>
<tbody>{{range .Top}}<tr><td class="l name">{{.Tag}}</td><td>{{num .Keys}}</td><td class="l"><meter min="0" max="1" value="{{share .Keys $top}}"></meter></td></tr>{{end}}</tbody>
</table>
{{else}}<p class="note">No tag set holds a key.</p>{{end}}
<p class="note">{{.Scanned}} tag sets measured{{if .Partial}} (partial: the scan stopped at its limit){{end}}, {{ago $.At .At}} ago.</p>
{{end}}
</section>
{{else}}
<p>No cache is recorded: give a Cache the Handler's Metrics (runtime.WithMetrics(h.Metrics())).</p>
{{end}}
</main>
</body>
</html>
`
