// The time agentd adds to a job on the real OpenCode server (issue #20): N = 1 and 16 parallel jobs
// run by a client talking to `opencode serve` itself vs one agents_start + agents_wait, in alternating
// rounds (medians, beside opencode's own cost); then both again through a recording proxy, to split
// agentd's own time from opencode's. Exits 77 when opencode is not installed.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, Agent } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { startScriptedLlm } from './scripted_llm.mjs';
import { startOpencode, OPENCODE_BIN, OPENCODE_VERSION } from './opencode_server.mjs';
import { spawnAgentd } from './agentd_process.mjs';

if (!existsSync(OPENCODE_BIN)) {
  console.log(`SKIP: ${OPENCODE_BIN} is not installed (tests/e2e/install.sh could not reach the npm registry)`);
  process.exit(77);
}

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const positional = args.filter((a, i) => !a.startsWith('--') && !['--out', '--rounds', '--agentd-log-level'].includes(args[i - 1]));
const QUICK = flag('--quick');
const OUT = option('--out');
const ROUNDS = Number(option('--rounds') ?? (QUICK ? 1 : 7));
const NS = QUICK ? [1, 4] : [1, 16];
const AGENTD = process.env.AGENTD ?? positional[0];
if (!AGENTD || !existsSync(AGENTD)) {
  console.error(`overhead.bench.mjs: the agentd binary is not given or missing (AGENTD=${AGENTD}); ctest sets it`);
  process.exit(1);
}
const JOB_MS = 120_000;
// Usage: node overhead.bench.mjs [--quick] [--rounds R] [--out DIR] [--agentd-log-level L] [AGENTD]
// (AGENTD: the binary, or the AGENTD environment variable). --quick: one round, N = 1 and 4.

// The target of issue #20: ≤ 2 % of the direct time or ≤ 5 ms, whichever is larger.
const targetMs = (directMs) => Math.max(0.02 * directMs, 5);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const round1 = (x) => Math.round(x * 10) / 10;

// One short text turn: no tool, a fixed title (so opencode asks its small model for none).
const promptOf = (marker) => `Answer in one line [[llm marker=${marker}]]`;
const expected = (marker) => `Scripted answer ${marker}.`;

async function postJson(url, body) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(JOB_MS),
  });
  if (res.status !== 200) throw new Error(`POST ${url}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

// opencode goes on working for a second or two after a turn (its git snapshots and session
// summaries), which the next batch would pay for, whichever client runs it: every measured batch
// starts once opencode's CPU time (its own and its reaped children's, from /proc) grew by at most
// one tick (10 ms) in 250 ms, or after 15 s. Returns how long it waited, in ms.
function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0);  // utime stime cutime cstime
  } catch {
    return null;  // no /proc: nothing to wait for
  }
}

async function settle(pid) {
  const t0 = performance.now();
  let before = cpuTicks(pid);
  while (before !== null && performance.now() - t0 < 15_000) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = cpuTicks(pid);
    if (now - before <= 1) break;
    before = now;
  }
  return performance.now() - t0;
}

// --- the direct client: opencode alone ---------------------------------------------------

// One job as agentd runs it upstream: create the session (its title given), send the prompt on
// the blocking /message call, which answers once the turn is complete; with `diff`, also the
// GET /session/{id}/diff agentd reads as the turn ends (its diff_summary). Times in ms.
async function directJob(opencodeUrl, title, marker, diff) {
  const t0 = performance.now();
  const session = await postJson(`${opencodeUrl}/session`, { title });
  const t1 = performance.now();
  const reply = await postJson(`${opencodeUrl}/session/${session.id}/message`, { parts: [{ type: 'text', text: promptOf(marker) }] });
  const t2 = performance.now();
  if (reply.info?.error) throw new Error(`direct job failed: ${JSON.stringify(reply.info.error)}`);
  const text = reply.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
  if (text !== expected(marker)) throw new Error(`direct job answered ${JSON.stringify(text)}`);
  if (diff) {
    const res = await fetch(`${opencodeUrl}/session/${session.id}/diff?messageID=${reply.info.parentID}`, { signal: AbortSignal.timeout(JOB_MS) });
    if (res.status !== 200) throw new Error(`GET diff: HTTP ${res.status}`);
    await res.json();
  }
  return { createMs: t1 - t0, promptMs: t2 - t1 };
}

async function directBatch(opencodeUrl, n, diff) {
  const marker = `d${randomUUID().slice(0, 8)}`;
  const t0 = performance.now();
  const jobs = await Promise.all(Array.from({ length: n }, (_, i) => directJob(opencodeUrl, `bench ${marker} ${i}`, marker, diff)));
  return { wallMs: performance.now() - t0, createMs: median(jobs.map((j) => j.createMs)), promptMs: median(jobs.map((j) => j.promptMs)), marker };
}

// --- through agentd ----------------------------------------------------------------------

let rpcId = 1;
async function rpc(agentdUrl, method, params) {
  const body = await postJson(`${agentdUrl}/rpc`, { jsonrpc: '2.0', id: rpcId++, method, params });
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

// One agents_start of n tasks, then agents_wait until all are completed. `insideMs`: from the
// first job's created_at to the last one's finished_at, as agentd stamps them (ms resolution).
async function agentdBatch(agentdUrl, n) {
  const marker = `a${randomUUID().slice(0, 8)}`;
  const tasks = Array.from({ length: n }, (_, i) => ({ prompt: promptOf(marker), description: `bench ${marker} ${i}` }));
  const t0 = performance.now();
  const { jobs } = await rpc(agentdUrl, 'agents_start', { session: 'bench', tasks });
  const out = await rpc(agentdUrl, 'agents_wait', { session: 'bench', jobs: jobs.map((j) => j.id), mode: 'all', timeout_ms: JOB_MS, on_input: 'ignore' });
  const wallMs = performance.now() - t0;
  if (!out.done || out.timed_out) throw new Error(`agentd jobs not done: ${JSON.stringify(out)}`);
  for (const j of out.jobs) {
    if (j.state !== 'completed' || j.output !== expected(marker)) throw new Error(`agentd job ended ${j.state}: ${JSON.stringify(j)}`);
  }
  const created = Math.min(...out.jobs.map((j) => Date.parse(j.created_at)));
  const finished = Math.max(...out.jobs.map((j) => Date.parse(j.finished_at)));
  return { wallMs, insideMs: finished - created, marker };
}

// --- where agentd's time goes ------------------------------------------------------------

// A recording proxy in front of opencode for the attribution phase: every call (agentd's event
// stream too) is forwarded as is, and each /session… call, once answered, kept with its start and
// end (performance.now() of this process, the clock the clients' own times use) and, for POST
// /session, the title sent and the id answered.
function startRecordingProxy(targetUrl) {
  const target = new URL(targetUrl);
  const agent = new Agent({ keepAlive: true });
  const calls = [];
  // When the event stream carried each session's session.idle on to its reader: the end of a
  // prompt_async turn, which no call's reply shows.
  const idles = new Map();
  const idlePattern = /"type":"session\.idle","properties":\{"sessionID":"(ses_[A-Za-z0-9_-]+)"/g;
  const noteIdles = (text) => {
    for (const m of text.matchAll(idlePattern)) {
      if (!idles.has(m[1])) idles.set(m[1], []);
      idles.get(m[1]).push(performance.now());
    }
    return text.slice(-512);  // a frame cut between two chunks is matched with the next one
  };
  const idleAfter = (session, at) => (idles.get(session) ?? []).find((t) => t >= at);
  const server = createServer((req, res) => {
    const call = { method: req.method, path: req.url, start: performance.now() };
    const creating = req.method === 'POST' && /^\/session(\?|$)/.test(req.url);
    const sent = [];
    const answered = [];
    const streaming = /^\/(global\/)?event(\?|$)/.test(req.url);
    let carry = '';
    const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, agent,
                             headers: { ...req.headers, host: target.host } }, (upRes) => {
      res.writeHead(upRes.statusCode, upRes.headers);
      upRes.on('data', (chunk) => {
        if (creating) answered.push(chunk);
        if (streaming) carry = noteIdles(carry + chunk.toString('latin1'));
        res.write(chunk);
      });
      upRes.on('end', () => res.end());
      upRes.on('error', () => res.destroy());
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.on('data', (chunk) => { if (creating) sent.push(chunk); up.write(chunk); });
    req.on('end', () => up.end());
    res.on('finish', () => {
      call.end = performance.now();
      if (!req.url.startsWith('/session')) return;
      if (creating) {
        try {
          call.title = JSON.parse(Buffer.concat(sent).toString()).title;
          call.session = JSON.parse(Buffer.concat(answered).toString()).id;
        } catch { /* not a session */ }
      } else {
        call.session = req.url.match(/^\/session\/([^/?]+)/)?.[1];
      }
      calls.push(call);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const close = () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); agent.destroy(); });
      resolve({ url: `http://127.0.0.1:${server.address().port}`, calls, idleAfter, close });
    });
  });
}

// One traced batch, split along its last job (the one the batch waited for): the client's
// (agentd's, or the direct client's) own time before, between and after its upstream calls, and
// opencode's time in each call. The direct client through the proxy is the control: what the
// proxy and this process add to both.
async function tracedBatch(proxy, n, viaAgentd) {
  proxy.calls.length = 0;
  const t0 = performance.now();
  const batch = viaAgentd ? await agentdBatch(viaAgentd, n) : await directBatch(proxy.url, n, false);
  const t1 = performance.now();
  const marker = batch.marker;
  const sessions = new Map();
  for (const c of proxy.calls) {
    if (c.title?.startsWith(`bench ${marker} `)) sessions.set(c.session, { create: c });
  }
  for (const c of proxy.calls) {
    const job = sessions.get(c.session);
    if (!job || c === job.create) continue;
    if (c.method === 'POST' && (c.path.includes('/message') || c.path.includes('/prompt_async'))) job.message = c;
    else if (c.path.includes('/diff')) job.diff = c;
    else if (c.method === 'GET' && c.path.includes('/message?limit=')) job.read = c;
    else (job.other ??= []).push(c);
  }
  const jobs = [...sessions.values()];
  // A prompt_async turn (agentd's, with its event stream up) runs from the prompt's 204 to the
  // session.idle the stream carries; agentd then reads the turn's last message, its extra call.
  for (const j of jobs) {
    if (!j.message?.path.includes('/prompt_async')) continue;
    const idle = proxy.idleAfter(j.create.session, j.message.end);
    j.message = idle && { ...j.message, end: idle };
  }
  if (jobs.length !== n || jobs.some((j) => !j.message)) throw new Error(`traced batch: ${jobs.length} of ${n} jobs seen upstream with all their calls`);
  // The bench's turns change no file, which agentd knows from the event stream: no diff read.
  if (viaAgentd && jobs.some((j) => j.diff)) throw new Error('traced batch: agentd read the diff of a turn that changed no file');
  const extra = (j) => j.diff ?? j.read;
  const lastCall = (j) => extra(j) ?? j.message;
  const last = jobs.reduce((a, b) => (lastCall(b).end > lastCall(a).end ? b : a));
  const span = (c) => (c ? c.end - c.start : 0);
  return {
    wallMs: t1 - t0,
    launchMs: last.create.start - t0,
    createMs: span(last.create),
    beforePromptMs: last.message.start - last.create.end,
    promptMs: span(last.message),
    beforeDiffMs: extra(last) ? extra(last).start - last.message.end : 0,
    diffMs: span(extra(last)),
    afterMs: t1 - lastCall(last).end,
    otherCalls: jobs.reduce((k, j) => k + (j.other?.length ?? 0), 0),
    firstCreateMs: Math.min(...jobs.map((j) => j.create.start)) - t0,
    lastCreateMs: Math.max(...jobs.map((j) => j.create.start)) - t0,
  };
}

// --- the run -----------------------------------------------------------------------------

function report(rows) {
  const lines = [
    '| N parallel jobs | opencode alone (direct), ms | via agentd, ms | overhead per job, ms | overhead | target | direct + diff read, ms | agentd inside (created → finished), ms |',
    '|---:|---:|---:|---:|---:|---|---:|---:|',
  ];
  for (const r of rows) {
    const ok = r.overhead_ms <= r.target_ms ? '✓' : '✗';
    lines.push(`| ${r.n} | ${r.direct_ms.toFixed(1)} | ${r.agentd_ms.toFixed(1)} | ${r.overhead_ms.toFixed(1)} | ${r.overhead_pct.toFixed(1)} % | ≤ ${r.target_ms.toFixed(1)} ms ${ok} | ${r.direct_diff_ms.toFixed(1)} | ${r.agentd_inside_ms.toFixed(0)} |`);
  }
  lines.push('', 'agentd sends its prompt with prompt_async: its turn runs from the POST to the session.idle that the event stream carries, and agentd then reads the turn\'s last message (`GET /session/{id}/message?limit=1`), its extra call.',
             '', '| N | client | before POST /session | between create and prompt | between the turn\'s end and the extra read | after the last call, to the client | own time | agentd\'s own time − the direct client\'s | opencode: create | opencode: prompt (its turn) | opencode: extra read (agentd\'s) |',
             '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const t = r.traced;
    const d = t.direct;
    lines.push(`| ${r.n} | agentd | ${t.launch_ms.toFixed(1)} | ${t.before_prompt_ms.toFixed(1)} | ${t.before_diff_ms.toFixed(1)} | ${t.after_ms.toFixed(1)} | ${t.own_ms.toFixed(1)} | ${r.traced.added_ms.toFixed(1)} | ${t.create_ms.toFixed(1)} | ${t.prompt_ms.toFixed(1)} | ${t.diff_ms.toFixed(1)} |`);
    lines.push(`| ${r.n} | direct | ${d.launch_ms.toFixed(1)} | ${d.before_prompt_ms.toFixed(1)} | — | ${d.after_ms.toFixed(1)} | ${d.own_ms.toFixed(1)} | | ${d.create_ms.toFixed(1)} | ${d.prompt_ms.toFixed(1)} | — |`);
  }
  return `${lines.join('\n')}\n`;
}

const cleanups = [];
let status = 0;
try {
  const started = performance.now();
  const llm = await startScriptedLlm();
  cleanups.push(llm.close);
  const opencode = await startOpencode({ llmUrl: llm.url });
  cleanups.push(opencode.stop);
  const maxN = Math.max(...NS);
  const agentdArgs = (upstreamUrl) => [
    '--auth', 'none', '--upstream-url', upstreamUrl, '--max-tasks-per-call', String(maxN),
    '--max-running', String(4 * maxN), '--log-level', option('--agentd-log-level') ?? 'warn',
  ];
  const agentd = await spawnAgentd(AGENTD, agentdArgs(opencode.url), 'agentd-bench-state-', 'agentd listening');
  cleanups.push(agentd.stop);
  console.log(`opencode ${OPENCODE_VERSION} healthy and agentd up after ${Math.round(performance.now() - started)} ms`);

  // Warm-up, untimed: a fresh server's first prompt is slow, and every path is run once.
  await directBatch(opencode.url, 1, true);
  await agentdBatch(agentd.url, 1);
  await directBatch(opencode.url, maxN, true);
  await agentdBatch(agentd.url, maxN);

  // Rounds: in each, every N runs the three variants, their order rotated from round to round
  // (and between the Ns) so a drift of the machine falls on each alike.
  const settled = [];
  const quiet = async () => { settled.push(await settle(opencode.pid)); };
  const variants = {
    direct: async (n) => { await quiet(); return directBatch(opencode.url, n, false); },
    direct_diff: async (n) => { await quiet(); return directBatch(opencode.url, n, true); },
    agentd: async (n) => { await quiet(); return agentdBatch(agentd.url, n); },
  };
  const names = Object.keys(variants);
  const runs = Object.fromEntries(NS.map((n) => [n, Object.fromEntries(names.map((v) => [v, []]))]));
  for (let round = 0; round < ROUNDS; round++) {
    NS.forEach((n, k) => {
      runs[n].order = names.map((_, i) => names[(i + round + k) % names.length]);
    });
    for (const n of NS) {
      for (const v of runs[n].order) runs[n][v].push(await variants[v](n));
    }
    console.log(`round ${round + 1}/${ROUNDS}: ${NS.map((n) => `N=${n} ${names.map((v) => `${v} ${runs[n][v].at(-1).wallMs.toFixed(1)}`).join(', ')}`).join('; ')}`);
  }

  // Attribution: the same batches through a second agentd whose upstream is a recording proxy
  // (the first one stopped, so opencode serves one event stream as before).
  await agentd.stop();
  cleanups.pop();
  const proxy = await startRecordingProxy(opencode.url);
  cleanups.push(proxy.close);
  const traced = await spawnAgentd(AGENTD, agentdArgs(proxy.url), 'agentd-bench-state-', 'traced agentd listening');
  cleanups.push(traced.stop);
  const traces = Object.fromEntries(NS.map((n) => [n, []]));
  const controls = Object.fromEntries(NS.map((n) => [n, []]));
  const own = (t) => t.launchMs + t.beforePromptMs + t.beforeDiffMs + t.afterMs;
  for (const n of NS) {
    await tracedBatch(proxy, n, traced.url);
    await tracedBatch(proxy, n, null);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const n of NS) {
      const pair = [async () => { await quiet(); return tracedBatch(proxy, n, traced.url); },
                    async () => { await quiet(); return tracedBatch(proxy, n, null); }];
      if (round % 2) pair.reverse();
      const [first, second] = [await pair[0](), await pair[1]()];
      traces[n].push(round % 2 ? second : first);
      controls[n].push(round % 2 ? first : second);
    }
  }
  // What any call to agentd costs on this machine: the round trip of an RPC that does no work.
  const rtts = [];
  for (let i = 0; i < 21; i++) {
    const t0 = performance.now();
    await rpc(traced.url, 'agents_status', { session: 'bench', jobs: [`job_${'0'.repeat(32)}`] });
    rtts.push(performance.now() - t0);
  }
  const rpcRttMs = median(rtts);
  console.log(`traced, own time: ${NS.map((n) => `N=${n} agentd ${JSON.stringify(traces[n].map((t) => round1(own(t))))} direct ${JSON.stringify(controls[n].map((t) => round1(own(t))))}`).join('; ')}`);

  const rows = NS.map((n) => {
    const tm = (key, from = traces) => median(from[n].map((t) => t[key]));
    const wall = (v) => runs[n][v].map((r) => r.wallMs);
    const direct = median(wall('direct'));
    const viaAgentd = median(wall('agentd'));
    const overhead = viaAgentd - direct;
    return {
      n,
      direct_ms: direct,
      agentd_ms: viaAgentd,
      overhead_ms: overhead,
      overhead_pct: (100 * overhead) / direct,
      target_ms: targetMs(direct),
      within_target: overhead <= targetMs(direct),
      paired_overhead_ms: median(wall('agentd').map((a, i) => a - wall('direct')[i])),
      direct_diff_ms: median(wall('direct_diff')),
      agentd_inside_ms: median(runs[n].agentd.map((r) => r.insideMs)),
      direct_create_ms: median(runs[n].direct.map((r) => r.createMs)),
      direct_prompt_ms: median(runs[n].direct.map((r) => r.promptMs)),
      runs_ms: Object.fromEntries(names.map((v) => [v, wall(v).map(round1)])),
      traced: {
        wall_ms: tm('wallMs'),
        launch_ms: tm('launchMs'),
        before_prompt_ms: tm('beforePromptMs'),
        before_diff_ms: tm('beforeDiffMs'),
        after_ms: tm('afterMs'),
        own_ms: median(traces[n].map(own)),
        create_ms: tm('createMs'),
        prompt_ms: tm('promptMs'),
        diff_ms: tm('diffMs'),
        other_calls: Math.max(...traces[n].map((t) => t.otherCalls)),
        first_create_ms: tm('firstCreateMs'),
        last_create_ms: tm('lastCreateMs'),
        // The control: the direct client through the same proxy.
        direct: {
          wall_ms: tm('wallMs', controls),
          launch_ms: tm('launchMs', controls),
          before_prompt_ms: tm('beforePromptMs', controls),
          after_ms: tm('afterMs', controls),
          own_ms: median(controls[n].map(own)),
          first_create_ms: tm('firstCreateMs', controls),
          last_create_ms: tm('lastCreateMs', controls),
          create_ms: tm('createMs', controls),
          prompt_ms: tm('promptMs', controls),
        },
        // agentd's own time net of the proxy and this process, and with its extra upstream call.
        added_ms: median(traces[n].map(own)) - median(controls[n].map(own)),
      },
    };
  });
  const titled = llm.requests.filter((r) => r.path === '/v1/chat/completions' && !r.body?.tools?.length).length;
  console.log(`waited for opencode to settle before each batch: median ${median(settled).toFixed(0)} ms, longest ${Math.max(...settled).toFixed(0)} ms`);
  console.log(`an agentd RPC round trip (agents_status of an unknown id), median of 21: ${rpcRttMs.toFixed(2)} ms`);
  if (titled > 0) console.log(`note: opencode asked the LLM ${titled} time(s) without tools (titles or summaries)`);
  const md = report(rows);
  console.log(`\nmedians of ${ROUNDS} round(s); overhead per job = via agentd − direct (the N jobs run in parallel)\n${md}`);
  for (const r of rows) {
    console.log(`N=${r.n}: paired overhead (median of per-round differences) ${r.paired_overhead_ms.toFixed(1)} ms; direct per job: create ${r.direct_create_ms.toFixed(1)} ms + prompt ${r.direct_prompt_ms.toFixed(1)} ms`);
    console.log(`N=${r.n} traced: first/last POST /session ${r.traced.first_create_ms.toFixed(1)}/${r.traced.last_create_ms.toFixed(1)} ms after agents_start was sent (direct client: ${r.traced.direct.first_create_ms.toFixed(1)}/${r.traced.direct.last_create_ms.toFixed(1)}); other upstream calls of the jobs: ${r.traced.other_calls}`);
  }
  if (OUT) {
    mkdirSync(OUT, { recursive: true });
    const result = { quick: QUICK, agentd_rpc_round_trip_ms: rpcRttMs, settle_ms: { median: median(settled), max: Math.max(...settled) }, rounds: ROUNDS, opencode_version: OPENCODE_VERSION, prompt: promptOf('MARKER'), target: 'overhead <= max(2 % of direct, 5 ms)', results: rows };
    writeFileSync(join(OUT, 'opencode_overhead.json'), `${JSON.stringify(result)}\n`);
    writeFileSync(join(OUT, 'opencode_overhead.md'), md);
    console.log(`wrote ${join(OUT, 'opencode_overhead.json')} and opencode_overhead.md`);
  }
} catch (e) {
  console.error(`overhead.bench.mjs: ${e.stack ?? e}`);
  status = 1;
} finally {
  for (const cleanup of cleanups.reverse()) {
    try { await cleanup(); } catch (e) { console.error(`cleanup: ${e.message}`); status = 1; }
  }
}
process.exit(status);
