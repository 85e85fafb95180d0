/**
 * The live cluster dashboard: one self-contained HTML page (no build step, no CDN) served at
 * GET /dashboard. The page takes the token from the URL fragment `#token=...` (a fragment is never
 * sent to the server, so never logged) or asks for it, keeps it in sessionStorage, and polls
 * /v1/cluster and /v1/stats every second. Ops/s and latency quantiles come from the differences
 * between two polls of the latency histograms.
 */

const css = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d232b}
header{background:#1d232b;color:#fff;padding:10px 18px;display:flex;gap:18px;align-items:baseline}
header h1{font-size:18px;margin:0}#status{font-size:13px;opacity:.85}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:14px;padding:14px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 14px}
h2{font-size:15px;margin:0 0 8px}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f2;font-variant-numeric:tabular-nums}
.up{color:#137333}.down{color:#c5221f;font-weight:600}.spare{color:#8a6d00}.leader{font-weight:700}
.big{font-size:24px;font-weight:600}#login{padding:40px;display:none}#login input{width:420px}
`;

const script = `
'use strict';
const $ = (id) => document.getElementById(id);
let token = null, prev = null, prevNodes = new Map(), timer = null;
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
function row(cells, cls) { const tr = el('tr', undefined, cls); for (const c of cells) tr.appendChild(c instanceof Node ? c : el('td', c)); return tr; }
function fill(id, rows) { const tb = $(id); tb.replaceChildren(...rows); }
function readToken() {
  const m = /(?:^|&)token=([^&]*)/.exec(location.hash.slice(1));
  if (m) { token = decodeURIComponent(m[1]); sessionStorage.setItem('tessera-token', token); history.replaceState(null, '', location.pathname); }
  else token = sessionStorage.getItem('tessera-token');
}
function showLogin(msg) { $('login').style.display = 'block'; $('main').style.display = 'none'; $('login-msg').textContent = msg || ''; }
async function api(path) {
  const r = await fetch(path, { headers: { authorization: 'Bearer ' + token }, cache: 'no-store' });
  if (r.status === 401) { const e = new Error('token refused'); e.auth = true; throw e; }
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
  return r.json();
}
function age(ms) { return ms === null || ms === undefined ? '?' : ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(1) + ' s'; }
function health(n) {
  if (n.state === 'down') return 'down';
  if (n.heartbeat_age_ms !== null && n.heartbeat_age_ms !== undefined && n.heartbeat_age_ms > 1500) return 'late';
  return n.state;
}
function nodeCells(n, now) {
  const m = n.metrics; if (!m) return ['', '', ''];
  const p = prevNodes.get(n.id); const dt = p ? (now - p.at) / 1000 : 0;
  const rate = p && dt > 0 ? Math.max(0, m.entries_applied - p.m.entries_applied) / dt : null;
  const d = m.fsync_counts.map((v, i) => v - (p ? p.m.fsync_counts[i] || 0 : 0));
  const useDelta = p && d.some((v) => v > 0);
  const q = quantile(m.fsync_bounds_s, useDelta ? d : m.fsync_counts, 0.99);
  return [m.entries_applied + (rate === null ? '' : ' (' + rate.toFixed(1) + '/s)'), m.elections_won, ms(q)];
}
function lagText(g) {
  if (!g.replicas || g.replicas.length === 0) return '-';
  const lags = g.replicas.filter((r) => r.lag !== null).map((r) => r.lag);
  const max = lags.length === 0 ? '?' : Math.max(...lags);
  return 'max ' + max + ' \u00b7 ' + g.replicas.map((r) => r.node + ':' + (r.lag === null ? '?' : r.lag)).join(' ');
}
function renderCluster(c, now) {
  $('mm-leader').textContent = c.metadata.leader === null ? 'none' : String(c.metadata.leader);
  $('mm-members').textContent = c.metadata.members.join(', ');
  fill('nodes-body', c.nodes.map((n) => { const h = health(n); return row([n.id, n.role, n.addr, n.pid === null ? '' : n.pid, el('td', h, h === 'late' ? 'down' : h), age(n.heartbeat_age_ms), ...nodeCells(n, now)]); }));
  prevNodes = new Map(c.nodes.filter((n) => n.metrics).map((n) => [n.id, { at: now, m: n.metrics }]));
  fill('groups-body', c.groups.map((g) => row([g.id, g.members.map((m) => m === g.leader ? m + '*' : m).join(', '), g.leader === null ? 'none' : g.leader, g.term, lagText(g)], g.leader === null ? 'down' : '')));
  fill('tables-body', c.tables.flatMap((t) => t.shards.map((s, i) => row([i === 0 ? t.name : '', i === 0 ? t.engine : '', JSON.stringify(s.start) + ' .. ' + JSON.stringify(s.end), s.group, s.epoch]))));
  $('counts').textContent = c.nodes.length + ' nodes, ' + c.groups.length + ' groups, ' + c.tables.length + ' tables';
}
function quantile(bounds, counts, q) {
  const total = counts.reduce((a, b) => a + b, 0); if (total === 0) return null;
  let acc = 0; for (let i = 0; i < counts.length; i++) { acc += counts[i]; if (acc >= q * total) return i < bounds.length ? bounds[i] : Infinity; }
  return Infinity;
}
function ms(s) { return s === null ? '-' : s === Infinity ? '>' + 10000 + ' ms' : (s * 1000 < 1 ? (s * 1000).toFixed(2) : (s * 1000).toFixed(1)) + ' ms'; }
function renderStats(s, now) {
  const byOp = new Map();
  for (const o of s.ops) {
    if (o.op === 'stats' || o.op === 'cluster' || o.op === 'dashboard' || o.op === 'metrics') continue;
    const key = o.op; const p = prev && prev.map.get(o.op + '|' + o.code);
    const cur = byOp.get(key) || { count: 0, errors: 0, buckets: new Array(o.buckets.length).fill(0), total: 0 };
    const d = o.buckets.map((b, i) => b - (p ? p.buckets[i] : 0));
    const n = o.count - (p ? p.count : 0);
    cur.count += n; cur.total += o.count; if (o.code !== 'OK') cur.errors += n;
    d.forEach((v, i) => { cur.buckets[i] += v; }); byOp.set(key, cur);
  }
  const dt = prev ? (now - prev.at) / 1000 : 0;
  let all = 0; const rows = [];
  for (const [op, v] of [...byOp.entries()].sort()) {
    const rate = dt > 0 ? v.count / dt : 0; all += rate;
    rows.push(row([op, rate.toFixed(1), ms(quantile(s.bucket_bounds_s, v.buckets, 0.5)), ms(quantile(s.bucket_bounds_s, v.buckets, 0.99)), v.errors, v.total]));
  }
  fill('ops-body', rows);
  $('ops-total').textContent = all.toFixed(1);
  $('inflight').textContent = s.inflight;
  prev = { at: now, map: new Map(s.ops.map((o) => [o.op + '|' + o.code, o])) };
}
async function poll() {
  try {
    const [c, s] = await Promise.all([api('/v1/cluster'), api('/v1/stats')]);
    const now = Date.now(); renderCluster(c, now); renderStats(s, now);
    $('status').textContent = 'live, updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    if (e.auth) { clearInterval(timer); sessionStorage.removeItem('tessera-token'); showLogin('The token was refused.'); return; }
    $('status').textContent = 'error: ' + e.message;
  }
}
function start() { $('login').style.display = 'none'; $('main').style.display = ''; poll(); timer = setInterval(poll, 1000); }
$('login-form').addEventListener('submit', (ev) => { ev.preventDefault(); token = $('token-input').value.trim(); sessionStorage.setItem('tessera-token', token); start(); });
readToken();
if (token) start(); else showLogin('');
`;

export const dashboardHtml = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tessera dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${css}</style></head>
<body>
<header><h1>Tessera</h1><span id="status">connecting...</span><span id="counts"></span></header>
<div id="login"><form id="login-form"><p>Paste a token (read-only is enough):</p>
<input id="token-input" type="password" autocomplete="off"> <button type="submit">Open</button>
<p id="login-msg"></p></form></div>
<main id="main">
<section><h2>Throughput</h2><div><span class="big" id="ops-total">0</span> ops/s &middot;
<span id="inflight">0</span> in flight</div>
<table><thead><tr><th>operation</th><th>ops/s</th><th>p50</th><th>p99</th><th>errors/poll</th><th>total</th></tr></thead>
<tbody id="ops-body"></tbody></table></section>
<section><h2>Metadata manager</h2><div>leader: <span class="leader" id="mm-leader">?</span></div>
<div>members: <span id="mm-members"></span></div></section>
<section><h2>Nodes</h2><table><thead><tr><th>id</th><th>role</th><th>address</th><th>pid</th><th>health</th><th>heartbeat age</th><th>entries applied</th><th>elections won</th><th>fsync p99</th></tr></thead>
<tbody id="nodes-body"></tbody></table></section>
<section><h2>Replication groups</h2><table><thead><tr><th>group</th><th>members (* leader)</th><th>leader</th><th>term</th><th>replication lag (entries)</th></tr></thead>
<tbody id="groups-body"></tbody></table></section>
<section><h2>Tables and shards</h2><table><thead><tr><th>table</th><th>engine</th><th>range</th><th>group</th><th>epoch</th></tr></thead>
<tbody id="tables-body"></tbody></table></section>
</main>
<script>${script}</script>
</body></html>
`;
