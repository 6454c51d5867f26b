// net/web/app.js - the back-office dashboard: polls the node's HTTP API (docs/HTTP.md) and
// /metrics, and draws what it finds. Plain JavaScript, no build step, no network beyond the node
// that served the page. Text from the server only ever goes into the page through textContent.
'use strict';

const REFRESH_MS = 2000;
const CHART_POINTS = 150;

const state = {
  sku: null,          // the SKU searched for (refreshed with everything else)
  eventsSince: null,  // the last log sequence whose events were read
  orders: new Map(),  // order id -> {state, seq}
  prevMetrics: null,  // the previous scrape, for rates
  series: [],         // [{t, ops, p50, p99}]
  timer: null,
  requestId: 1,
};

// ---- helpers ----

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells, attrs) {
  const tr = document.createElement('tr');
  for (const c of cells) tr.appendChild(c instanceof Node ? c : el('td', c));
  for (const [k, v] of Object.entries(attrs || {})) tr.setAttribute(k, v);
  return tr;
}

function num(v, cls) {
  const td = el('td', v, 'num' + (cls ? ' ' + cls : ''));
  return td;
}

function fill(tbody, rows, empty, cols) {
  tbody.replaceChildren(...rows);
  if (rows.length === 0) {
    const td = el('td', empty, 'note');
    td.colSpan = cols;
    tbody.appendChild(row([td]));
  }
}

function headers(json) {
  const h = {};
  const token = $('token').value.trim();
  if (token) h['Authorization'] = 'Bearer ' + token;
  if (json) h['Content-Type'] = 'application/json';
  return h;
}

async function getJSON(path) {
  const r = await fetch(path, {headers: headers(false), cache: 'no-store'});
  const body = await r.json();
  if (body.error) throw new Error(path + ': ' + body.error.name + ': ' + body.error.msg);
  return body;
}

async function ops(list) {
  const r = await fetch('/v1/ops', {
    method: 'POST',
    headers: headers(true),
    body: JSON.stringify({v: 1, id: state.requestId++, ops: list}),
    cache: 'no-store',
  });
  const body = await r.json();
  if (body.error) throw new Error('/v1/ops: ' + body.error.name + ': ' + body.error.msg);
  return body;
}

function showError(e) { $('error').textContent = e ? String(e.message || e) : ''; }

function duration(ms) {
  if (ms < 0) return 'due';
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
}

// ---- node status ----

// The replication map of the status (docs/REPLICATION.md) as label/value pairs.
function replicationItems(r) {
  if (!r) return [['replication', 'not reported by this node']];
  const items = [];
  if (r.role === 'follower') {
    items.push(['leader', r.leader || 'unknown']);
    items.push(['link to the leader', r.connected ? 'connected' : 'not connected']);
    items.push(['behind the leader', (r.lag_entries || 0) + ' log entries']);
  } else if (r.followers !== undefined) {
    items.push(['sync replicas', r.sync_replicas === undefined ? '-' : r.sync_replicas]);
  }
  const fol = r.followers || [];
  items.push(['followers', fol.length === 0 ? 'none' : fol.length]);
  for (const f of fol) {
    items.push(['  ' + f.node, 'lag ' + f.lag_entries + ' entries' +
                (f.lag_ops >= 0 ? ' (' + f.lag_ops + ' ops)' : '') +
                (f.lag_ms >= 0 ? ', ' + f.lag_ms + ' ms' : '') + ', seen ' +
                duration(f.seen_ms_ago) + ' ago']);
  }
  return items;
}

function renderStatus(st) {
  const node = $('node');
  const role = el('span', st.role, 'role ' + st.role);
  node.replaceChildren(
    document.createTextNode(location.host + ' '), role,
    document.createTextNode(' epoch ' + st.node.epoch + ' · seq ' + st.seq.durable +
                            ' · ' + st.durability + ' · v' + st.version +
                            ' · up ' + duration(st.uptime_ms)));
  const list = $('status-list');
  const items = [
    ['node', location.host],
    ['role', st.role],
    ['epoch', st.node.epoch],
    ['log applied / durable', st.seq.applied + ' / ' + st.seq.durable],
    ['materialized', st.seq.materialized + ' (lag ' + (st.seq.durable - st.seq.materialized) + ')'],
    ['oldest log entry', st.seq.log_first],
    ['queue depth', st.queue_depth],
    ['requests / ops', st.counters.requests + ' / ' + st.counters.ops],
    ['busy refusals', st.counters.busy],
    ['connections (msgpack)', st.counters.connections],
  ].concat(replicationItems(st.replication));
  list.replaceChildren();
  for (const [k, v] of items) { list.appendChild(el('dt', k)); list.appendChild(el('dd', v)); }
  const t = st.tables;
  fill($('tables-table').querySelector('tbody'), [
    ['locations', t.locations], ['SKUs', t.skus], ['stock records', t.stock],
    ['holds (open)', t.holds + ' (' + t.holds_open + ')'], ['orders', t.orders],
    ['purchase orders', t.pos], ['idempotency keys', t.keys],
  ].map(([k, v]) => row([el('th', k), num(v)])), '', 2);
  return st;
}

// ---- SKU search ----

const QTY = ['on_hand', 'available', 'committed', 'held', 'unsellable', 'safety_stock', 'incoming',
             'in_transit'];

async function renderSku() {
  if (!state.sku) return;
  const sku = state.sku;
  const path = encodeURIComponent(sku);
  let res;
  try {
    res = await getJSON('/v1/stock/' + path);
  } catch (e) {
    $('sku-table').classList.add('hidden');
    $('ledger-table').classList.add('hidden');
    $('ledger-title').classList.add('hidden');
    $('sku-note').textContent = e.message;
    return;
  }
  if (sku !== state.sku) return;  // another search began meanwhile
  $('sku-note').textContent = res.records.length + ' location(s), seq ' + res.node.seq;
  const rows = res.records.map(r => row(
      [el('td', r.loc)].concat(QTY.map(q => {
        const td = num(r[q], q === 'available' && r[q] <= 0 ? 'neg' : '');
        td.dataset.q = q;
        return td;
      })),
      {'data-loc': r.loc}));
  fill($('sku-table').querySelector('tbody'), rows, 'no stock record', 9);
  $('sku-available').textContent = res.available;
  $('sku-table').dataset.sku = res.sku;
  $('sku-table').classList.remove('hidden');
  try {
    const led = await getJSON('/v1/ledger/' + path + '?limit=10');
    const lrows = led.rows.map(m => row([
      num(m.seq), el('td', new Date(m.time_ms).toLocaleString()), el('td', m.loc),
      el('td', m.move + (m.cause ? ' (' + m.cause + ')' : '')),
      el('td', Object.entries(m.delta).map(([k, v]) => k + ' ' + (v > 0 ? '+' : '') + v).join(', ')),
      el('td', m.ref), el('td', m.actor)]));
    fill($('ledger-table').querySelector('tbody'), lrows, 'no movements yet', 7);
    $('ledger-table').classList.remove('hidden');
    $('ledger-title').classList.remove('hidden');
  } catch (e) {
    showError(e);
  }
}

// ---- low stock and reorder suggestions ----

async function renderLow() {
  const [low, reo] = await Promise.all([getJSON('/v1/low-stock?limit=20'),
                                        getJSON('/v1/reorder?limit=200')]);
  const sugg = new Map(reo.rows.map(r => [r.sku + '\u0000' + r.loc, r]));
  const rows = low.rows.map(r => {
    const s = sugg.get(r.sku + '\u0000' + r.loc);
    const cover = !s ? '' : s.cover_days_milli < 0 ? 'no sales' : (s.cover_days_milli / 1000).toFixed(1);
    return row([
      el('td', r.sku), el('td', r.loc), num(r.available, r.available <= 0 ? 'neg' : 'low'),
      num(s ? s.suggested_qty : ''), num(cover), num(s ? (s.velocity_milli / 1000).toFixed(2) : ''),
    ], {'data-sku': r.sku, 'data-loc': r.loc});
  });
  fill($('low-table').querySelector('tbody'), rows, 'nothing at or below its reorder point', 6);
}

// ---- recent orders, from the events of the log ----

async function readEvents(st) {
  if (state.eventsSince === null) {  // first look: the last 2,000 batches the log still has
    state.eventsSince = Math.max(st.seq.log_first > 0 ? st.seq.log_first - 1 : 0,
                                 st.seq.durable - 2000);
  }
  for (let page = 0; page < 20; page++) {  // catch up at most 20 pages per refresh
    let res;
    try {
      res = await ops([{op: 'events', since: state.eventsSince, limit: 1000}]);
    } catch (e) {
      showError(e);
      return;
    }
    const r = res.results[0];
    if (r.code === 20) {  // E_SEQUENCE: what we asked for is gone; start over at the oldest
      state.eventsSince = Math.max(0, st.seq.log_first - 1);
      continue;
    }
    if (r.code !== 0) throw new Error('events: ' + r.name + ': ' + r.msg);
    for (const ev of r.events) {
      if (ev.kind === 'order_state') state.orders.set(ev.order, {state: ev.state, seq: ev.seq});
    }
    const moved = r.next !== state.eventsSince;
    state.eventsSince = r.next;
    if (!moved || r.events.length < 1000) break;
  }
  if (state.orders.size > 500) {  // keep the newest
    const keep = [...state.orders.entries()].sort((a, b) => b[1].seq - a[1].seq).slice(0, 200);
    state.orders = new Map(keep);
  }
}

function renderOrders() {
  const latest = [...state.orders.entries()].sort((a, b) => b[1].seq - a[1].seq).slice(0, 15);
  fill($('orders-table').querySelector('tbody'),
       latest.map(([id, o]) => row([el('td', id), el('td', o.state), num(o.seq)], {'data-order': id})),
       'no order changed state lately', 3);
}

// ---- holds about to expire ----

async function renderHolds() {
  const res = await getJSON('/v1/expiring-holds?limit=15');
  const now = Date.now();
  fill($('holds-table').querySelector('tbody'), res.rows.map(h => row([
    num(h.hold), num(duration(h.expires_ms - now), h.expires_ms - now < 60000 ? 'soon' : ''),
    num(h.units), el('td', h.qty + ' × ' + h.sku + ' @ ' + h.loc + (h.lines > 1 ? ' (+' + (h.lines - 1) + ' lines)' : '')),
  ], {'data-hold': h.hold})), 'no open holds', 4);
}

// ---- throughput and latency from /metrics ----

function parseMetrics(text) {
  const m = {ops: 0, buckets: new Map(), count: 0};
  for (const line of text.split('\n')) {
    if (line.startsWith('trastenda_ops_total{')) {
      m.ops += Number(line.slice(line.lastIndexOf(' ') + 1));
    } else if (line.startsWith('trastenda_request_duration_seconds_bucket{')) {
      const le = /le="([^"]+)"/.exec(line)[1];
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      m.buckets.set(le, (m.buckets.get(le) || 0) + v);
    }
  }
  return m;
}

// The upper bound (ms) of the bucket that holds quantile q of the requests between two scrapes.
function quantile(prev, cur, q) {
  const les = [...cur.buckets.keys()];
  const total = (cur.buckets.get('+Inf') || 0) - (prev.buckets.get('+Inf') || 0);
  if (total <= 0) return null;
  for (const le of les) {
    const n = cur.buckets.get(le) - (prev.buckets.get(le) || 0);
    if (n >= q * total) return le === '+Inf' ? null : Number(le) * 1000;
  }
  return null;
}

async function sampleMetrics() {
  const r = await fetch('/metrics', {headers: headers(false), cache: 'no-store'});
  if (!r.ok) throw new Error('/metrics: HTTP ' + r.status);
  const cur = parseMetrics(await r.text());
  cur.t = performance.now();
  const prev = state.prevMetrics;
  state.prevMetrics = cur;
  if (!prev) return;
  const dt = (cur.t - prev.t) / 1000;
  const point = {
    ops: Math.max(0, (cur.ops - prev.ops) / dt),
    p50: quantile(prev, cur, 0.5),
    p99: quantile(prev, cur, 0.99),
  };
  state.series.push(point);
  if (state.series.length > CHART_POINTS) state.series.shift();
  $('chart-now').textContent = point.ops.toFixed(0) + ' ops/s' +
      (point.p50 !== null ? ' · p50 ≤ ' + point.p50 + ' ms' : '') +
      (point.p99 !== null ? ' · p99 ≤ ' + point.p99 + ' ms' : '');
  drawChart();
}

function drawChart() {
  const c = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  if (c.width !== w * ratio) { c.width = w * ratio; c.height = h * ratio; }
  const g = c.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  const pad = {l: 56, r: 56, t: 10, b: 20};
  const pw = w - pad.l - pad.r, ph = h - pad.t - pad.b;
  const s = state.series;
  const maxOps = Math.max(10, ...s.map(p => p.ops)) * 1.1;
  const maxLat = Math.max(1, ...s.map(p => Math.max(p.p50 || 0, p.p99 || 0))) * 1.1;
  g.strokeStyle = '#e2ddd5';
  g.fillStyle = '#6b655e';
  g.font = '11px system-ui, sans-serif';
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + ph * i / 4;
    g.beginPath(); g.moveTo(pad.l, y); g.lineTo(pad.l + pw, y); g.stroke();
    g.textAlign = 'right';
    g.fillText(Math.round(maxOps * (4 - i) / 4), pad.l - 6, y + 4);
    g.textAlign = 'left';
    g.fillText((maxLat * (4 - i) / 4).toFixed(2), pad.l + pw + 6, y + 4);
  }
  g.fillText('ops/s', 4, pad.t + 8);
  g.textAlign = 'right';
  g.fillText('ms', w - 4, pad.t + 8);
  const x = i => pad.l + pw * (i + CHART_POINTS - s.length) / (CHART_POINTS - 1);
  const line = (color, value, max) => {
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    let started = false;
    s.forEach((p, i) => {
      const v = value(p);
      if (v === null) { started = false; return; }
      const y = pad.t + ph * (1 - v / max);
      if (started) g.lineTo(x(i), y); else g.moveTo(x(i), y);
      started = true;
    });
    g.stroke();
    g.lineWidth = 1;
  };
  line('#8a4b16', p => p.ops, maxOps);
  line('#2d6a3e', p => p.p50, maxLat);
  line('#a3231b', p => p.p99, maxLat);
}

// ---- the refresh loop ----

async function refresh() {
  let failed = null;
  const note = e => { failed = failed || e; };
  try {
    const st = renderStatus(await getJSON('/v1/status'));
    await Promise.all([
      renderSku().catch(note), renderLow().catch(note), renderHolds().catch(note),
      readEvents(st).then(renderOrders).catch(note), sampleMetrics().catch(note),
    ]);
  } catch (e) {
    note(e);
  }
  showError(failed);
}

function schedule() {
  clearTimeout(state.timer);
  if ($('auto').checked) state.timer = setTimeout(() => refresh().finally(schedule), REFRESH_MS);
}

$('sku-form').addEventListener('submit', ev => {
  ev.preventDefault();
  state.sku = $('sku-input').value.trim();
  history.replaceState(null, '', '#sku=' + encodeURIComponent(state.sku));
  renderSku().catch(showError);
});
$('auto').addEventListener('change', schedule);
$('token').value = sessionStorage.getItem('trastenda-token') || '';
$('token').addEventListener('change', () => sessionStorage.setItem('trastenda-token', $('token').value));
window.addEventListener('resize', drawChart);

const fromHash = /^#sku=(.+)$/.exec(location.hash);
if (fromHash) {
  state.sku = decodeURIComponent(fromHash[1]);
  $('sku-input').value = state.sku;
}
refresh().finally(schedule);
