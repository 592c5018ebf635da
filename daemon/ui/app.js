// agentd dashboard: reads the token from the URL fragment (then keeps it in sessionStorage only),
// follows every session of its principal over /ws (agents_subscribe {all, snapshot}) and renders
// the jobs live from the pushed agents_event messages; no polling of the list. The selected job's
// partial output and tool steps come from agents_peek on its events and on a modest timer while
// it runs or waits. A `waiting` job's pending requests (permissions, questions) are answered
// from the detail pane with agents_respond over the same connection. A finished job that is the
// latest of its chain takes a follow-up (agents_start with `continue`) from the same pane. The
// header's usage total is summed from the pushed JobViews (agents_status's `usage` is the same
// sum), so it stays current without a request.
// Everything shown comes from sub-agents and upstreams: it is set as text (textContent, value,
// title), never parsed as markup.
'use strict';

const STATES = ['queued', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'interrupted'];
const PEEK_INTERVAL_MS = 1000;
const TOKEN_KEY = 'agentd.token';

const model = {
  jobs: new Map(), // id -> {job, session, at}: `at` is performance.now() when `job` arrived
  selected: null,
  filter: '',
  fresh: null, // ids updated by events since the pending subscribe: newer than its snapshot
  peeked: null, // {id, steps, key} of the selected job, from its latest agents_peek
};

const $ = (id) => document.getElementById(id);

// Running and waiting jobs are live: their clock runs and they have a current step.
const live = (state) => state === 'running' || state === 'waiting';

// A new element with a class and text (text only: never markup).
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

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
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN)
      return Promise.reject(new Error('not connected to agentd'));
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
      if (msg.error) reject(Object.assign(new Error(msg.error.message), { data: msg.error.data }));
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
  return live(j.state) ? j.elapsed_ms + (performance.now() - rec.at) : j.elapsed_ms;
}

// An RFC 3339 time as the browser's local wall-clock time; '' when absent or unreadable.
function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString();
}

function between(from, to) {
  const a = Date.parse(from);
  const b = Date.parse(to);
  return Number.isNaN(a) || Number.isNaN(b) ? undefined : Math.max(0, b - a);
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
  const hay = [j.id, j.description, j.task && j.task.prompt, j.state, rec.session,
    j.upstream && j.upstream.session,
    j.activity && j.activity.tool, j.activity && j.activity.title]
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

// The current step of a live job, as in `bash: npm test`.
function activityText(a) {
  if (!a || !a.tool) return '';
  return a.title ? a.tool + ': ' + a.title : a.tool;
}

// What a waiting job asks for, in a few words.
function requestsText(requests) {
  return (requests || []).map((r) => r.kind === 'permission'
    ? 'permission: ' + (r.permission || '?') : 'question').join(', ');
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
  const desc = labelCell(j);
  if (live(j.state)) {
    const now = activityText(j.activity);
    if (now) {
      const line = el('div', 'activity mono', now);
      line.title = now;
      desc.appendChild(line);
    }
    if (j.state === 'waiting' && j.requests && j.requests.length)
      desc.appendChild(el('div', 'asks', 'needs an answer · ' + requestsText(j.requests)));
  }
  tr.appendChild(desc);
  tr.appendChild(idCell(j.id, 'id'));
  const elapsed = cell(formatDuration(elapsedMs(rec)), 'num elapsed');
  tr.appendChild(elapsed);
  tr.appendChild(cell(String(j.depth), 'num wide'));
  tr.appendChild(idCell(j.upstream ? j.upstream.session : '', 'upstream wide'));
  const u = j.usage;
  tr.appendChild(cell(u ? u.input_tokens + ' / ' + u.output_tokens : '', 'num wide'));
  tr.appendChild(cell(u ? formatCost(u.cost) : '', 'num wide cost'));
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
  // Waiting jobs need someone: their count stands out in the header and in the tab's title.
  const waiting = counts.waiting || 0;
  $('waiting').hidden = waiting === 0;
  $('waiting').querySelector('.n').textContent = String(waiting);
  document.title = waiting ? '(' + waiting + ' waiting) agentd' : 'agentd';
}

// Opens the job that has waited longest.
function openWaiting() {
  let oldest = null;
  for (const rec of model.jobs.values()) {
    if (rec.job.state !== 'waiting') continue;
    const asked = (rec.job.requests || []).map((r) => r.asked_at).sort()[0] || rec.job.created_at;
    if (!oldest || asked < oldest.asked) oldest = { id: rec.job.id, asked };
  }
  if (oldest) select(oldest.id);
}

let renderQueued = false;

// Coalesces a burst of events into one repaint.
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderCounts();
    renderUsage();
    const rows = [];
    for (const [session, recs] of groups()) {
      const head = document.createElement('tr');
      head.className = 'session';
      head.dataset.session = session;
      const td = cell('session ' + session + ' · ' + recs.length + (recs.length === 1 ? ' job' : ' jobs'));
      td.appendChild(el('span', 'session-usage', usageText(sumUsage(recs))));
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

// The client-side clock: only the elapsed cells of running and waiting jobs change.
function tick() {
  const rows = document.querySelectorAll('tr.job[data-state="running"], tr.job[data-state="waiting"]');
  for (const tr of rows) {
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
  if (model.selected !== id) {
    model.peeked = null;
    $('requests').replaceChildren();
    $('follow-up-text').value = '';
    $('follow-up-error').hidden = true;
  }
  model.selected = id;
  $('output').textContent = '';
  render();
  refreshDetail(true);
}

function closeDetail() {
  model.selected = null;
  model.peeked = null;
  $('requests').replaceChildren();
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
  $('detail-title').textContent = labelOf(j) || j.id;
  $('cancel').hidden = !(j.state === 'queued' || live(j.state));
  renderRequests(rec);
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
    fact(dl, 'usage', usageText(j.usage));
  if (j.task) {
    fact(dl, 'prompt', j.task.prompt, 'prompt');
    fact(dl, 'agent', j.task.agent);
    fact(dl, 'model', j.task.model, 'mono');
    fact(dl, 'directory', j.task.directory, 'mono');
  }
  renderWorktree(dl, rec);
  if (live(j.state) && j.activity) {
    fact(dl, 'step', '#' + j.activity.steps + ' ' + activityText(j.activity) + ' · since ' +
      formatTime(j.activity.since), 'mono current-step');
  }
  renderError(j);
  $('follow-up').hidden = !continuable(j);
  renderSteps();
  renderAnswered(j);
  renderOutput(j);
}

// --- what a job is, what it cost, how it ended -------------------------------------------------

// A job's name in the list and the pane: its description, else its prompt's preview.
function labelOf(j) {
  return j.description || (j.task && j.task.prompt) || '';
}

function labelCell(j) {
  if (j.description || !(j.task && j.task.prompt)) return cell(j.description || '', 'desc');
  const td = cell(j.task.prompt, 'desc preview');
  td.title = 'no description: the start of the prompt';
  return td;
}

// A cost as a plain decimal ("0.0012", "0"; never "1.2e-7"): at most 10 places, which also
// drops the float noise of a sum.
function formatCost(cost) {
  const n = Number(cost);
  if (!Number.isFinite(n)) return '';
  const text = n.toFixed(10).replace(/\.?0+$/, '');
  return text === '-0' ? '0' : text;
}

function sumUsage(recs) {
  const total = { input_tokens: 0, output_tokens: 0, cost: 0 };
  for (const rec of recs) {
    const u = rec.job.usage;
    if (!u) continue;
    total.input_tokens += Number(u.input_tokens) || 0;
    total.output_tokens += Number(u.output_tokens) || 0;
    total.cost += Number(u.cost) || 0;
  }
  return total;
}

function usageText(u) {
  return u.input_tokens + ' in / ' + u.output_tokens + ' out tokens · cost ' + formatCost(u.cost);
}

// The header's total over every job the page holds, the sum agents_status's `usage` gives.
function renderUsage() {
  const total = sumUsage(model.jobs.values());
  const box = $('usage');
  box.querySelector('.tokens').textContent = total.input_tokens + ' in / ' + total.output_tokens +
    ' out tokens';
  box.querySelector('.cost').textContent = formatCost(total.cost);
}

const ENDINGS = {
  transport: 'Failed: the upstream could not be reached',
  timeout: 'Timed out',
  upstream: 'Failed: the upstream reported an error',
  protocol: 'Failed: the upstream answered something unexpected',
  limit: 'Stopped: over its limit',
  cancelled: 'Cancelled',
  interrupted: 'Interrupted: agentd stopped while it ran',
};

// How a job that did not complete ended, in place of an output it does not have: what happened
// (its kind), where (phase, HTTP status) and the message.
function renderError(j) {
  const box = $('detail-error');
  const e = j.error || (j.state === 'cancelled' || j.state === 'interrupted' ? { kind: j.state } : null);
  box.hidden = !e;
  if (!e) return;
  box.dataset.kind = e.kind || '';
  const facts = [e.kind && 'kind ' + e.kind, e.phase && 'phase ' + e.phase,
    e.http_status !== undefined && 'HTTP ' + e.http_status].filter(Boolean).join(' · ');
  box.replaceChildren(el('div', 'error-title', ENDINGS[e.kind] || 'Failed'),
    el('div', 'error-facts', facts));
  if (e.message) box.appendChild(el('p', 'error-message', e.message));
}

// The output box: live text, the final text, or nothing at all for a job that ended without
// one (its error says why) rather than an empty box.
function renderOutput(j) {
  const none = !live(j.state) && j.state !== 'queued' && j.output === undefined && !!j.error;
  $('output-label').hidden = $('output').hidden = none;
  $('output-label').textContent = live(j.state) ? 'Output so far (live)'
    : j.output !== undefined ? (j.truncated ? 'Output (truncated)' : 'Output') : 'Output';
  if (j.output !== undefined) $('output').textContent = j.output;
}

// --- follow-ups ---------------------------------------------------------------------------

// A finished job with an upstream session that no job continues yet (DESIGN §2 `continue`).
function continuable(j) {
  if (j.state === 'queued' || live(j.state) || !j.upstream) return false;
  for (const rec of model.jobs.values()) if (rec.job.continues === j.id) return false;
  return true;
}

// Starts the follow-up in the job's session and opens it; a refusal is shown under the box.
async function followUp(e) {
  e.preventDefault();
  const rec = model.selected && model.jobs.get(model.selected);
  const prompt = $('follow-up-text').value;
  const error = $('follow-up-error');
  if (!rec || !conn) return;
  if (!prompt.trim()) {
    error.textContent = 'Write the next prompt first.';
    error.hidden = false;
    return;
  }
  $('follow-up-send').disabled = true;
  try {
    const result = await conn.call('agents_start',
      { session: rec.session, tasks: [{ prompt, continue: rec.job.id }] });
    const job = result.jobs[0];
    if (!model.jobs.has(job.id)) store({ job, session: rec.session });
    select(job.id);
  } catch (err) {
    const reason = err.data && err.data.reason;
    error.textContent = 'Follow-up refused: ' + (reason || err.message);
    error.hidden = false;
  } finally {
    $('follow-up-send').disabled = false;
  }
}

// --- steps and answered requests --------------------------------------------------------------

// The selected job's tool steps from its latest agents_peek, oldest first; each opens to its
// output tail. Rebuilt only when they change, so an open step stays open and keeps its scroll.
function renderSteps() {
  const list = $('steps');
  const peeked = model.peeked && model.peeked.id === model.selected ? model.peeked : null;
  const steps = peeked ? peeked.steps : [];
  $('steps-label').hidden = list.hidden = steps.length === 0;
  $('steps-label').textContent = 'Steps (' + steps.length + ')';
  const key = peeked ? peeked.id + '\n' + JSON.stringify(steps) : '';
  if (list.dataset.key === key) return;
  const open = new Set();
  if (peeked && list.dataset.job === peeked.id)
    for (const item of list.querySelectorAll('details[open]')) open.add(item.dataset.index);
  list.dataset.key = key;
  list.dataset.job = peeked ? peeked.id : '';
  list.replaceChildren(...steps.map((s, i) => stepItem(s, i, open.has(String(i)))));
}

function stepItem(s, index, open) {
  const li = el('li', 'step');
  li.dataset.status = s.status || '';
  const details = el('details');
  details.dataset.index = String(index);
  details.open = open;
  const summary = el('summary');
  summary.append(el('span', 'step-status', s.status), el('span', 'step-tool mono', s.tool),
    el('span', 'step-title mono', s.title || ''));
  const took = formatDuration(between(s.started_at, s.finished_at));
  const when = [formatTime(s.started_at), took].filter(Boolean).join(' · ');
  if (when) summary.appendChild(el('span', 'step-time', when));
  details.appendChild(summary);
  const times = ['started ' + (formatTime(s.started_at) || '?')];
  if (s.finished_at) times.push('finished ' + formatTime(s.finished_at));
  details.appendChild(el('div', 'step-times', times.join(' · ')));
  details.appendChild(s.output_tail ? el('pre', 'tail', s.output_tail)
    : el('p', 'muted', 'no output'));
  li.appendChild(details);
  return li;
}

const DECISIONS = {
  allow: 'allowed once', allow_always: 'allowed always', deny: 'denied', answer: 'answered',
};

function renderAnswered(j) {
  const list = $('answered');
  const answered = j.answered || [];
  $('answered-label').hidden = list.hidden = answered.length === 0;
  list.replaceChildren(...answered.map((a) => {
    const li = el('li', 'answer');
    li.dataset.decision = a.decision || '';
    const what = a.kind === 'question' && a.decision === 'deny' ? 'dismissed'
      : DECISIONS[a.decision] || a.decision;
    li.append(el('span', 'answer-kind', a.kind), el('span', 'answer-decision', what),
      el('span', 'answer-by', 'by ' + a.by), el('span', 'answer-at', formatTime(a.at)));
    li.title = a.id;
    return li;
  }));
}

// --- pending requests -------------------------------------------------------------------------

// One block per pending request of the selected waiting job. Blocks are kept across repaints
// (keyed by job and request id), so a half-typed message or a picked option survives the
// activity events that keep arriving; a block goes when its request is no longer pending.
function renderRequests(rec) {
  const box = $('requests');
  const requests = rec.job.state === 'waiting' ? rec.job.requests || [] : [];
  const existing = new Map([...box.children].map((node) => [node.dataset.key, node]));
  const nodes = requests.map((r) => {
    const key = rec.job.id + '\n' + r.id;
    return existing.get(key) || requestBlock(rec, r, key);
  });
  if (nodes.length !== box.children.length || nodes.some((node, i) => box.children[i] !== node))
    box.replaceChildren(...nodes);
  box.hidden = nodes.length === 0;
}

function requestBlock(rec, r, key) {
  const block = el('div', 'request');
  block.dataset.key = key;
  block.dataset.id = r.id;
  block.dataset.kind = r.kind;
  const target = { session: rec.session, job: rec.job.id, request: r.id };
  if (r.kind === 'permission') permissionBlock(block, r, target);
  else questionBlock(block, r, target);
  return block;
}

function requestHead(block, title, r) {
  const head = el('div', 'request-head');
  head.append(el('span', 'request-kind', title));
  if (r.asked_at) head.appendChild(el('span', 'request-asked', 'asked ' + formatTime(r.asked_at)));
  block.appendChild(head);
}

function button(text, cls, onClick) {
  const b = el('button', cls, text);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

function permissionBlock(block, r, target) {
  requestHead(block, 'Permission', r);
  const what = el('p', 'request-text');
  what.append('The sub-agent asks to use ', el('code', 'permission-tool', r.permission || '?'),
    (r.patterns || []).length ? ' for:' : '.');
  block.appendChild(what);
  if ((r.patterns || []).length) {
    const list = el('ul', 'patterns');
    for (const p of r.patterns) list.appendChild(el('li', 'mono', p));
    block.appendChild(list);
  }
  const message = el('input', 'message');
  message.type = 'text';
  message.placeholder = 'Message for the sub-agent (sent with Deny, optional)';
  message.setAttribute('aria-label', 'message sent with Deny');
  message.autocomplete = 'off';
  block.appendChild(message);
  const actions = el('div', 'actions');
  actions.append(
    button('Allow once', 'allow', () => respond(block, target, { decision: 'allow' })),
    button('Always', 'always', () => respond(block, target, { decision: 'allow_always' })),
    button('Deny', 'deny', () => {
      const text = message.value.trim();
      respond(block, target, text ? { decision: 'deny', message: text } : { decision: 'deny' });
    }));
  block.append(actions, el('p', 'request-error'));
  block.lastChild.hidden = true;
}

let questionSeq = 0;

function questionBlock(block, r, target) {
  requestHead(block, 'Question', r);
  const questions = r.questions || [];
  const sets = questions.map((q, qi) => {
    const set = el('fieldset', 'q');
    set.dataset.index = String(qi);
    if (q.header) set.appendChild(el('legend', '', q.header));
    set.appendChild(el('p', 'request-text', q.question));
    const name = 'agentd-q' + ++questionSeq;
    const custom = q.custom === false ? null : el('input', 'custom');
    for (const opt of q.options || []) {
      const label = el('label', 'option');
      const input = el('input', 'choice');
      input.type = q.multiple ? 'checkbox' : 'radio';
      input.name = name;
      input.value = opt.label;
      // One answer to a single-choice question: an option or the typed text, not both.
      if (!q.multiple && custom) input.addEventListener('change', () => { custom.value = ''; });
      label.append(input, el('span', 'option-label', opt.label));
      if (opt.description) label.appendChild(el('span', 'option-desc', opt.description));
      set.appendChild(label);
    }
    if (custom) {
      custom.type = 'text';
      custom.autocomplete = 'off';
      custom.placeholder = q.multiple ? 'Another answer (optional)' : 'Or type your own answer';
      custom.setAttribute('aria-label', 'your own answer');
      if (!q.multiple) {
        custom.addEventListener('input', () => {
          if (custom.value) for (const c of set.querySelectorAll('input.choice')) c.checked = false;
        });
      }
      set.appendChild(custom);
    }
    block.appendChild(set);
    return { q, set, custom };
  });
  const error = el('p', 'request-error');
  error.hidden = true;
  const submit = () => {
    const answers = [];
    for (const [i, { q, set, custom }] of sets.entries()) {
      const picked = [...set.querySelectorAll('input.choice:checked')].map((c) => c.value);
      const text = custom ? custom.value.trim() : '';
      const answer = q.multiple ? (text ? [...picked, text] : picked) : (text ? [text] : picked);
      if (!answer.length) {
        showRequestError(block, sets.length > 1 ? 'Answer question ' + (i + 1) + ' first.'
          : 'Pick an option first.');
        return;
      }
      answers.push(answer);
    }
    respond(block, target, { answers });
  };
  const actions = el('div', 'actions');
  actions.append(button('Submit', 'submit', submit),
    button('Dismiss', 'dismiss', () => respond(block, target, { decision: 'deny' })));
  block.append(actions, error);
}

function showRequestError(block, text) {
  const error = block.querySelector('.request-error');
  error.textContent = text;
  error.hidden = false;
}

// Sends the answer; the block stays (disabled) until the job's event or the reply removes the
// request, and shows the error inline if agentd refuses it.
async function respond(block, target, answer) {
  const controls = block.querySelectorAll('button, input');
  block.querySelector('.request-error').hidden = true;
  block.classList.add('busy');
  for (const c of controls) c.disabled = true;
  try {
    const result = await conn.call('agents_respond', { ...target, ...answer });
    if (result && result.job && result.job.id) {
      store({ job: result.job, session: result.job.session || target.session });
      render();
      if (model.selected === result.job.id) refreshDetail(true);
    }
  } catch (err) {
    showRequestError(block, 'Not answered: ' + err.message);
  } finally {
    block.classList.remove('busy');
    if (block.isConnected) for (const c of controls) c.disabled = false;
  }
}

// The final output comes with the job; a live job's partial text and steps come from
// agents_peek, asked on each of its events and every PEEK_INTERVAL_MS while it stays selected
// and live. A finished job is peeked once (on opening it and on its last event) for its steps.
function refreshDetail(now) {
  const rec = model.selected && model.jobs.get(model.selected);
  if (!rec || !live(rec.job.state)) {
    clearInterval(peekTimer);
    peekTimer = null;
    if (now && rec && rec.job.state !== 'queued') peek();
    return;
  }
  if (!peekTimer) peekTimer = setInterval(() => peek(), PEEK_INTERVAL_MS);
  if (now) peek();
}

async function peek() {
  const id = model.selected;
  const rec = id && model.jobs.get(id);
  if (!rec || !conn) return;
  const seq = ++peekSeq;
  try {
    const result = await conn.call('agents_peek', { session: rec.session, job: id });
    if (seq !== peekSeq || model.selected !== id) return; // an older answer, or another job
    const latest = model.jobs.get(id);
    if (!latest) return;
    model.peeked = { id, steps: Array.isArray(result.steps) ? result.steps : [] };
    if (!live(latest.job.state)) {
      render();
      return;
    }
    // The view is as fresh as the answer (pushes and answers share one ordered stream), and it
    // carries what changes without an event, such as the upstream session once created.
    if (result.job && result.job.state) store({ job: result.job, session: latest.session });
    render();
    $('output').textContent = result.partial_output || '';
  } catch {
    // Reconnecting: the next tick asks again.
  }
}

async function cancelSelected() {
  const rec = model.selected && model.jobs.get(model.selected);
  if (!rec || !conn) return;
  const label = labelOf(rec.job) ? '"' + labelOf(rec.job) + '"' : rec.job.id;
  if (!confirm('Cancel job ' + label + '?')) return;
  try {
    await conn.call('agents_cancel', { session: rec.session, jobs: [rec.job.id] });
  } catch (err) {
    showNotice('Cancel failed: ' + err.message);
  }
}

// --- worktree and diff ------------------------------------------------------------------------

// A job with a worktree or a diff_summary shows where it ran and a Diff view: agents_peek
// {diff: true} on request, its files with status and +/-, each opening to its patch.
let diffShown = null; // the job id whose diff is on screen

function renderWorktree(dl, rec) {
  const j = rec.job;
  if (j.worktree) {
    fact(dl, 'worktree', j.worktree.directory, 'mono worktree-dir');
    fact(dl, 'branch', j.worktree.branch, 'mono worktree-branch');
  }
  $('diff').hidden = !(j.worktree || j.diff_summary);
  const sum = $('diff-summary');
  sum.replaceChildren();
  if (j.diff_summary) {
    const d = j.diff_summary;
    sum.append(d.files + (d.files === 1 ? ' file ' : ' files '), el('span', 'add', '+' + d.additions),
      ' ', el('span', 'del', '\u2212' + d.deletions));
  }
  if (diffShown !== j.id) $('diff-files').replaceChildren();
}

async function loadDiff() {
  const rec = model.selected && model.jobs.get(model.selected);
  if (!rec || !conn) return;
  const id = rec.job.id;
  const list = $('diff-files');
  try {
    const result = await conn.call('agents_peek', { session: rec.session, job: id, diff: true });
    if (model.selected !== id) return;
    diffShown = id;
    const changes = Array.isArray(result.changes) ? result.changes : [];
    list.replaceChildren(...changes.map(diffItem));
    if (!changes.length) {
      list.append(el('li', 'diff-none', result.diff_error ? 'Diff unavailable: ' +
        result.diff_error : 'No changes'));
    }
  } catch (err) {
    list.replaceChildren(el('li', 'diff-none', 'Diff failed: ' + err.message));
  }
}

const STATUS_LETTER = { added: 'A', modified: 'M', deleted: 'D' };

function diffItem(c) {
  const li = el('li', 'diff-file');
  const details = el('details');
  const summary = el('summary');
  summary.append((STATUS_LETTER[c.status] || '?') + ' ', el('span', 'add', '+' + c.additions),
    ' ', el('span', 'del', '\u2212' + c.deletions), ' ' + c.file);
  summary.title = c.status;
  const pre = el('pre', 'patch');
  for (const line of String(c.patch || '').split('\n')) {
    const cls = line.startsWith('+++') || line.startsWith('---') ? 'meta'
      : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del'
        : line.startsWith('@@') ? 'hunk' : '';
    pre.append(el('span', cls, line + '\n'));
  }
  details.append(summary, pre);
  li.appendChild(details);
  return li;
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
  $('follow-up').addEventListener('submit', followUp);
  $('close').addEventListener('click', closeDetail);
  $('diff-load').addEventListener('click', loadDiff);
  $('waiting').addEventListener('click', openWaiting);
  document.addEventListener('keydown', (e) => {
    // Escape closes the pane, except in a request's text field (it would drop what was typed).
    if (e.key === 'Escape' && !(e.target.closest && e.target.closest('.request'))) closeDetail();
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
