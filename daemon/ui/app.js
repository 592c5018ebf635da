// agentd dashboard: reads the token from the URL fragment (then keeps it in sessionStorage only),
// follows every session of its principal over /ws (agents_subscribe {all, snapshot}) and renders
// the jobs live from the pushed agents_event messages; no polling of the list. The selected job's
// partial output comes from agents_peek on its events and on a modest timer while it runs.
'use strict';

const STATES = ['queued', 'running', 'completed', 'failed', 'cancelled', 'interrupted'];
const PEEK_INTERVAL_MS = 1000;
const TOKEN_KEY = 'agentd.token';

const model = {
  jobs: new Map(), // id -> {job, session, at}: `at` is performance.now() when `job` arrived
  selected: null,
  filter: '',
  fresh: null, // ids updated by events since the pending subscribe: newer than its snapshot
};

const $ = (id) => document.getElementById(id);

// --- token --------------------------------------------------------------------------------

// The token arrives as #token=… (never in the query, so it reaches no log); it then lives in
// sessionStorage and leaves the address bar and the history.
function takeToken() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

// --- the connection -------------------------------------------------------------------------

class Connection {
  constructor(token) {
    this.token = token;
    this.nextId = 1;
    this.pending = new Map();
    this.backoff = 500;
  }

  open() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    // Browsers cannot send an Authorization header on a WebSocket: the token rides as a
    // subprotocol, and the server selects agentd.v1.
    this.ws = new WebSocket(url, ['agentd.v1', 'agentd.bearer.' + this.token]);
    setConnection('connecting');
    this.ws.onopen = () => {
      this.backoff = 500;
      this.opened = true;
      $('notice').hidden = true;
      setConnection('live');
      subscribe(this);
    };
    this.ws.onmessage = (e) => this.receive(e.data);
    this.ws.onclose = () => {
      for (const { reject } of this.pending.values()) reject(new Error('connection closed'));
      this.pending.clear();
      setConnection('offline');
      // The handshake's status is hidden from scripts: a refused token looks like agentd down.
      if (!this.opened) showNotice('Cannot reach agentd at /ws, or the token was refused.');
      setTimeout(() => this.open(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  call(method, params) {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.method === 'agents_event' && msg.params) {
      onEvent(msg.params);
    } else if (msg.id !== undefined && this.pending.has(msg.id)) {
      const { resolve, reject } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error) reject(new Error(msg.error.message));
      else resolve(msg.result);
    }
  }
}

let conn = null;

async function subscribe(c) {
  model.fresh = new Set();
  try {
    const result = await c.call('agents_subscribe', { all: true, snapshot: true });
    // The snapshot was taken when the subscription began; events that arrived before this
    // answer are newer, so they win.
    for (const entry of result.jobs || [])
      if (!model.fresh.has(entry.job.id)) store(entry);
    model.fresh = null;
    $('notice').hidden = !result.truncated;
    if (result.truncated) $('notice').textContent = 'Showing the newest jobs only.';
    render();
  } catch (err) {
    showNotice('Subscribing failed: ' + err.message);
  }
}

function onEvent(entry) {
  if (!entry.job || !entry.job.id) return;
  if (model.fresh) model.fresh.add(entry.job.id);
  store(entry);
  render();
  if (model.selected === entry.job.id) refreshDetail(true);
}

function store(entry) {
  model.jobs.set(entry.job.id, { job: entry.job, session: entry.session, at: performance.now() });
}

// --- list -----------------------------------------------------------------------------------

function elapsedMs(rec) {
  const j = rec.job;
  if (j.elapsed_ms === undefined) return undefined;
  return j.state === 'running' ? j.elapsed_ms + (performance.now() - rec.at) : j.elapsed_ms;
}

function formatDuration(ms) {
  if (ms === undefined) return '';
  const s = Math.floor(ms / 1000);
  if (s < 60) return (ms / 1000).toFixed(1) + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' m ' + String(s % 60).padStart(2, '0') + ' s';
  return Math.floor(m / 60) + ' h ' + String(m % 60).padStart(2, '0') + ' m';
}

function matches(rec) {
  if (!model.filter) return true;
  const j = rec.job;
  const hay = [j.id, j.description, j.state, rec.session, j.upstream && j.upstream.session]
    .filter(Boolean).join(' ').toLowerCase();
  return model.filter.split(/\s+/).every((word) => hay.includes(word));
}

function newestFirst(a, b) {
  return a.job.created_at < b.job.created_at ? 1 : a.job.created_at > b.job.created_at ? -1 : 0;
}

// Sessions ordered by their newest job, jobs newest first inside each.
function groups() {
  const bySession = new Map();
  for (const rec of [...model.jobs.values()].sort(newestFirst)) {
    if (!matches(rec)) continue;
    if (!bySession.has(rec.session)) bySession.set(rec.session, []);
    bySession.get(rec.session).push(rec);
  }
  return bySession;
}

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

// Long ids are cut in the table; the whole id is in the tooltip and the detail pane.
function idCell(id, cls) {
  const td = cell(id.length > 16 ? id.slice(0, 15) + '…' : id, 'mono ' + cls);
  td.title = id;
  return td;
}

function stateBadge(state) {
  const span = document.createElement('span');
  span.className = 'state';
  span.dataset.state = state;
  span.textContent = state;
  return span;
}

function jobRow(rec) {
  const j = rec.job;
  const tr = document.createElement('tr');
  tr.className = 'job' + (model.selected === j.id ? ' selected' : '');
  tr.dataset.id = j.id;
  tr.dataset.state = j.state;
  const state = document.createElement('td');
  state.className = 'state-cell';
  state.appendChild(stateBadge(j.state));
  tr.appendChild(state);
  tr.appendChild(cell(j.description || '', 'desc'));
  tr.appendChild(idCell(j.id, 'id'));
  const elapsed = cell(formatDuration(elapsedMs(rec)), 'num elapsed');
  tr.appendChild(elapsed);
  tr.appendChild(cell(String(j.depth), 'num'));
  tr.appendChild(idCell(j.upstream ? j.upstream.session : '', 'upstream'));
  const u = j.usage;
  tr.appendChild(cell(u ? u.input_tokens + ' / ' + u.output_tokens : '', 'num'));
  tr.appendChild(cell(u ? '$' + u.cost.toFixed(4) : '', 'num'));
  tr.addEventListener('click', () => select(j.id));
  return tr;
}

function renderCounts() {
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const rec of model.jobs.values()) counts[rec.job.state] = (counts[rec.job.state] || 0) + 1;
  const list = $('counts');
  list.replaceChildren(...STATES.map((s) => {
    const li = document.createElement('li');
    li.dataset.state = s;
    li.textContent = s;
    const n = document.createElement('span');
    n.className = 'n';
    n.textContent = String(counts[s]);
    li.appendChild(n);
    return li;
  }));
}

let renderQueued = false;

// Coalesces a burst of events into one repaint.
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderCounts();
    const rows = [];
    for (const [session, recs] of groups()) {
      const head = document.createElement('tr');
      head.className = 'session';
      head.dataset.session = session;
      const td = cell('session ' + session + ' · ' + recs.length + (recs.length === 1 ? ' job' : ' jobs'));
      td.colSpan = 8;
      head.appendChild(td);
      rows.push(head);
      for (const rec of recs) rows.push(jobRow(rec));
    }
    $('rows').replaceChildren(...rows);
    $('empty').hidden = rows.length > 0;
    $('empty').textContent = model.jobs.size ? 'No job matches the filter.' : 'No jobs yet.';
    renderDetail();
  });
}

// The client-side clock: only the elapsed cells of running jobs change.
function tick() {
  for (const tr of document.querySelectorAll('tr.job[data-state="running"]')) {
    const rec = model.jobs.get(tr.dataset.id);
    if (rec) tr.querySelector('.elapsed').textContent = formatDuration(elapsedMs(rec));
  }
  const sel = model.selected && model.jobs.get(model.selected);
  const el = document.querySelector('#detail-facts .elapsed');
  if (sel && el) el.textContent = formatDuration(elapsedMs(sel));
}

// --- detail ---------------------------------------------------------------------------------

let peekTimer = null;
let peekSeq = 0;

function select(id) {
  model.selected = id;
  $('output').textContent = '';
  render();
  refreshDetail(true);
}

function closeDetail() {
  model.selected = null;
  clearInterval(peekTimer);
  peekTimer = null;
  render();
}

function fact(dl, name, value, cls) {
  if (value === undefined || value === null || value === '') return;
  const dt = document.createElement('dt');
  dt.textContent = name;
  const dd = document.createElement('dd');
  dd.textContent = value;
  if (cls) dd.className = cls;
  dl.append(dt, dd);
}

function renderDetail() {
  const rec = model.selected && model.jobs.get(model.selected);
  $('detail').hidden = !rec;
  if (!rec) return;
  const j = rec.job;
  const badge = $('detail-state');
  badge.dataset.state = j.state;
  badge.textContent = j.state;
  $('detail-title').textContent = j.description || j.id;
  $('cancel').hidden = !(j.state === 'queued' || j.state === 'running');
  const dl = $('detail-facts');
  dl.replaceChildren();
  fact(dl, 'job', j.id, 'mono');
  fact(dl, 'session', rec.session, 'mono');
  fact(dl, 'depth', String(j.depth));
  fact(dl, 'upstream', j.upstream ? j.upstream.backend + ' ' + j.upstream.session : '', 'mono');
  fact(dl, 'created', j.created_at);
  fact(dl, 'started', j.started_at);
  fact(dl, 'finished', j.finished_at);
  fact(dl, 'elapsed', formatDuration(elapsedMs(rec)), 'elapsed');
  if (j.usage)
    fact(dl, 'usage', j.usage.input_tokens + ' in / ' + j.usage.output_tokens + ' out · $' +
      j.usage.cost.toFixed(4));
  const err = $('detail-error');
  err.hidden = !j.error;
  if (j.error) {
    err.textContent = [j.error.kind, j.error.phase, j.error.http_status]
      .filter((x) => x !== undefined).join(' · ') + ': ' + j.error.message;
  }
  $('output-label').textContent = j.state === 'running' ? 'Output so far (live)'
    : j.output !== undefined ? (j.truncated ? 'Output (truncated)' : 'Output') : 'Output';
  if (j.output !== undefined) $('output').textContent = j.output;
}

// The final output comes with the job; a running job's partial text comes from agents_peek,
// asked on each of its events and every PEEK_INTERVAL_MS while it stays selected and running.
function refreshDetail(now) {
  const rec = model.selected && model.jobs.get(model.selected);
  const running = rec && rec.job.state === 'running';
  if (!running) {
    clearInterval(peekTimer);
    peekTimer = null;
    return;
  }
  if (!peekTimer) peekTimer = setInterval(() => peek(), PEEK_INTERVAL_MS);
  if (now) peek();
}

async function peek() {
  const id = model.selected;
  const rec = id && model.jobs.get(id);
  if (!rec || rec.job.state !== 'running' || !conn) return;
  const seq = ++peekSeq;
  try {
    const result = await conn.call('agents_peek', { session: rec.session, job: id });
    if (seq !== peekSeq || model.selected !== id) return; // an older answer, or another job
    const latest = model.jobs.get(id);
    if (!latest || latest.job.state !== 'running') return;
    // The view is as fresh as the answer (pushes and answers share one ordered stream), and it
    // carries what changes without an event, such as the upstream session once created.
    if (result.job && result.job.state) {
      store({ job: result.job, session: latest.session });
      render();
    }
    $('output').textContent = result.partial_output;
  } catch {
    // Reconnecting: the next tick asks again.
  }
}

async function cancelSelected() {
  const rec = model.selected && model.jobs.get(model.selected);
  if (!rec || !conn) return;
  const label = rec.job.description ? '"' + rec.job.description + '"' : rec.job.id;
  if (!confirm('Cancel job ' + label + '?')) return;
  try {
    await conn.call('agents_cancel', { session: rec.session, jobs: [rec.job.id] });
  } catch (err) {
    showNotice('Cancel failed: ' + err.message);
  }
}

// --- page -----------------------------------------------------------------------------------

function setConnection(status) {
  const el = $('connection');
  el.dataset.status = status;
  el.textContent = status;
}

function showNotice(text) {
  $('notice').textContent = text;
  $('notice').hidden = false;
}

function start() {
  $('filter').addEventListener('input', (e) => {
    model.filter = e.target.value.trim().toLowerCase();
    render();
  });
  $('cancel').addEventListener('click', cancelSelected);
  $('close').addEventListener('click', closeDetail);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') closeDetail();
  });
  render();
  const token = takeToken();
  if (!token) {
    setConnection('offline');
    showNotice('No token: open the URL that `agentctl ui` prints (it carries #token=…).');
    return;
  }
  setInterval(tick, 250);
  conn = new Connection(token);
  conn.open();
}

start();
