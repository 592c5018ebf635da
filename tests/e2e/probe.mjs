// Ground truth: drives the real OpenCode server directly over HTTP (no agentd) through every
// exchange DESIGN §5 relies on and records what it sees, as JSON lines in captured/<scenario>.jsonl
// ({t, kind: request|reply|event|llm|note, ...}). Run by hand after install.sh:
//   node tests/e2e/probe.mjs [--strace DIR] [scenario ...]
// (--strace: both servers run under `strace -f`, their connect/send calls logged in DIR.)
// FINDINGS.md summarises the result; rerun this when the pinned OpenCode version changes.
import { mkdirSync, rmSync, writeFileSync, appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startScriptedLlm } from './scripted_llm.mjs';
import { startOpencode, makeGitRepo } from './opencode_server.mjs';

const OUT = join(dirname(fileURLToPath(import.meta.url)), 'captured');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The session a /global/event payload is about, if any.
function sessionOf(payload) {
  const p = payload.properties ?? {};
  return p.sessionID ?? p.info?.sessionID ?? p.part?.sessionID ?? (payload.type?.startsWith('session.') ? p.info?.id : undefined);
}

// Every frame of the SSE streams followed (tagged with which one), kept for the scenarios to
// wait on and record.
class EventLog {
  constructor() {
    this.frames = [];
    this.controller = new AbortController();
    this.readers = [];
  }

  follow(url, stream) {
    this.readers.push(this.#read(url, stream).catch((e) => { if (!this.controller.signal.aborted) throw e; }));
  }

  async #read(url, stream) {
    const res = await fetch(url, { signal: this.controller.signal, headers: { accept: 'text/event-stream' } });
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
        if (data) this.frames.push({ at: Date.now(), stream, raw: block, frame: JSON.parse(data) });
      }
    }
  }

  async waitFor(predicate, what, timeoutMs = 60_000, from = 0) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.frames.slice(from).find((f) => f.stream !== 'scoped' && predicate(f.frame));
      if (hit) return hit.frame;
      if (Date.now() > deadline) throw new Error(`no event ${what} within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  close() { this.controller.abort(); }
}

// One scenario's record: HTTP exchanges as they happen, then its events and provider requests.
class Scenario {
  constructor(ctx, name) {
    this.ctx = ctx;
    this.name = name;
    this.file = join(OUT, `${name}.jsonl`);
    this.t0 = Date.now();
    this.eventStart = ctx.events.frames.length;
    this.llmStart = ctx.llm.requests.length;
    this.sessions = new Set();
    rmSync(this.file, { force: true });
  }

  write(kind, fields) {
    appendFileSync(this.file, `${JSON.stringify({ t: Date.now() - this.t0, kind, ...fields })}\n`);
  }

  note(text, fields = {}) { this.write('note', { text, ...fields }); }

  // One HTTP call to `server` (default: the context's main one), recorded with its reply.
  async call(method, path, body, { server = this.ctx.server, record = true, timeoutMs = 120_000 } = {}) {
    if (record) this.write('request', { method, path, ...(body !== undefined ? { body } : {}) });
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: body !== undefined ? { 'content-type': 'application/json' } : {},
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let reply = text;
    try { reply = text ? JSON.parse(text) : null; } catch { /* not JSON: keep the text */ }
    if (record) this.write('reply', { method, path, status: res.status, content_type: res.headers.get('content-type'), body: reply });
    return { status: res.status, body: reply };
  }

  async session(body = {}, options = {}) {
    const r = await this.call('POST', '/session', body, options);
    if (r.status !== 200) throw new Error(`POST /session → ${r.status} ${JSON.stringify(r.body)}`);
    this.sessions.add(r.body.id);
    return r.body.id;
  }

  waitEvent(predicate, what, timeoutMs) {
    return this.ctx.events.waitFor(predicate, what, timeoutMs, this.eventStart);
  }

  waitIdle(sessionID, timeoutMs = 120_000) {
    return this.waitEvent((f) => f.payload?.type === 'session.idle' && f.payload.properties.sessionID === sessionID, `session.idle of ${sessionID}`, timeoutMs);
  }

  // Writes the events of this scenario's sessions (and those `extra` picks) and what the
  // provider was sent meanwhile, with the system prompt and tool schemas left out.
  finish(extra = () => false) {
    for (const f of this.ctx.events.frames.slice(this.eventStart)) {
      if (f.stream === 'scoped') continue;
      const s = sessionOf(f.frame.payload ?? {});
      if ((s && this.sessions.has(s)) || extra(f.frame)) this.write('event', { at: f.at - this.t0, stream: f.stream, frame: f.frame });
    }
    for (const r of this.ctx.llm.requests.slice(this.llmStart)) {
      const body = r.body ?? {};
      const messages = (body.messages ?? []).map((m) => (m.role === 'system' ? { role: 'system', content: `(${String(m.content).length} chars)` } : m));
      this.write('llm', { path: r.path, tools: (body.tools ?? []).map((t) => t.function.name), messages });
    }
  }
}

const text = (t) => ({ parts: [{ type: 'text', text: t }] });

const scenarios = {
  async session_create(s) {
    const id = await s.session({});
    await s.session({ title: 'titled', parentID: id });
    await s.call('POST', '/session', { title: 'x', bogus: 1 });
    await s.call('POST', '/session', { parentID: 'not-a-session' });
    await s.call('POST', '/session', { parentID: 'ses_00000000000000000000000000' });
    await s.call('GET', `/session/${id}`);
    await s.call('GET', '/session/ses_00000000000000000000000000');
    await s.call('GET', '/global/health');
    s.finish();
  },

  // A plain answer streamed slowly: message.part.delta, the text part mid-turn, busy status.
  async text_prompt(s) {
    const id = await s.session({});
    const reply = s.call('POST', `/session/${id}/message`, text('Say something [[llm marker=M1 delay_ms=400]]'));
    await s.waitEvent((f) => f.payload?.type === 'message.part.delta' && f.payload.properties.sessionID === id, 'message.part.delta');
    await s.call('GET', '/session/status');
    await s.call('GET', `/session/${id}/message`);
    await reply;
    await s.waitIdle(id);
    await s.call('GET', '/session/status');
    await s.call('GET', `/session/${id}/message`);
    s.finish();
  },

  async prompt_async(s) {
    const id = await s.session({});
    await s.call('POST', `/session/${id}/prompt_async`, text('Async [[llm marker=A1]]'));
    await s.waitIdle(id);
    await s.call('GET', `/session/${id}/message`);
    const scoped = s.ctx.events.frames.slice(s.eventStart).filter((f) => f.stream === 'scoped' && JSON.stringify(f.frame).includes(id));
    for (const f of scoped) s.write('event', { at: f.at - s.t0, stream: 'scoped', frame: f.frame });
    s.finish();
  },

  // prompt_async's failures: an unknown agent or model (the synchronous call's 500), and an LLM
  // error; what the event stream shows of each, since no reply carries them.
  async prompt_async_errors(s) {
    const a = await s.session({});
    await s.call('POST', `/session/${a}/prompt_async`, { ...text('Hi [[llm]]'), agent: 'no-such-agent' });
    const b = await s.session({});
    await s.call('POST', `/session/${b}/prompt_async`, { ...text('Hi [[llm]]'), model: { providerID: 'scripted', modelID: 'no-such-model' } });
    const c = await s.session({});
    await s.call('POST', `/session/${c}/prompt_async`, text('Fail [[llm status=400]]'));
    await s.waitIdle(c);
    const d = await s.session({});
    await s.call('POST', `/session/${d}/prompt_async`, text('Run it [[llm tool=bash command="echo async-step"]]'));
    await s.waitIdle(d);
    const last = await s.call('GET', `/session/${d}/message?limit=1`);
    await s.call('GET', `/session/${d}/message?limit=2`);
    for (let i = 0; i < 3; i++) {
      await s.call('GET', `/session/${d}/message?limit=1`);
      await s.call('GET', `/session/${d}/message/${last.body[0].info.id}`);
      await s.call('GET', `/session/${d}/message`);
    }
    await sleep(1500);
    for (const id of [a, b, c]) await s.call('GET', `/session/${id}/message`);
    for (const id of [a, b, c]) await s.call('GET', `/session/${id}/message?limit=1`);
    await s.call('GET', '/session/status');
    const scoped = s.ctx.events.frames.slice(s.eventStart).filter((f) => f.stream === 'scoped' && [a, b, c].some((id) => JSON.stringify(f.frame).includes(id)));
    for (const f of scoped) s.write('event', { at: f.at - s.t0, stream: 'scoped', frame: f.frame });
    s.finish();
  },

  async bash_step(s) {
    const id = await s.session({});
    await s.call('POST', `/session/${id}/message`, text('Run it [[llm tool=bash command="echo hi-from-bash"]]'));
    await s.waitIdle(id);
    await s.call('GET', `/session/${id}/message`);
    s.finish();
  },

  // `permission: {bash: "ask"}`: asked, listed, the synchronous prompt on hold, replied once.
  async permission_once(s) {
    const server = s.ctx.askServer;
    const id = await s.session({}, { server });
    let settled = false;
    const reply = s.call('POST', `/session/${id}/message`, text('Ask first [[llm tool=bash command="echo permitted"]]'), { server }).finally(() => { settled = true; });
    const asked = await s.waitEvent((f) => f.payload?.type === 'permission.asked' && f.payload.properties.sessionID === id, 'permission.asked');
    await s.call('GET', '/permission', undefined, { server });
    await s.call('GET', '/session/status', undefined, { server });
    await sleep(3000);
    s.note('synchronous POST /session/{id}/message still pending 3 s after permission.asked', { pending: !settled });
    await s.call('GET', `/session/${id}/message`, undefined, { server });
    await s.call('POST', `/permission/${asked.payload.properties.id}/reply`, { reply: 'once' }, { server });
    await reply;
    await s.waitIdle(id);
    await s.call('POST', `/permission/${asked.payload.properties.id}/reply`, { reply: 'once' }, { server });
    await s.call('POST', '/permission/per_00000000000000000000000000/reply', { reply: 'once' }, { server });
    await s.call('POST', `/permission/${asked.payload.properties.id}/reply`, { reply: 'maybe' }, { server });
    s.finish();
  },

  async permission_reject(s) {
    const server = s.ctx.askServer;
    const id = await s.session({}, { server });
    const reply = s.call('POST', `/session/${id}/message`, text('Ask first [[llm tool=bash command="echo never"]]'), { server });
    const asked = await s.waitEvent((f) => f.payload?.type === 'permission.asked' && f.payload.properties.sessionID === id, 'permission.asked');
    await s.call('POST', `/permission/${asked.payload.properties.id}/reply`, { reply: 'reject', message: 'not on my machine' }, { server });
    await reply;
    await s.waitIdle(id);
    await s.call('GET', '/permission', undefined, { server });
    s.finish();
  },

  // A reject without a message: does the turn go on, as it does with one?
  async permission_reject_plain(s) {
    const server = s.ctx.askServer;
    const id = await s.session({}, { server });
    const reply = s.call('POST', `/session/${id}/message`, text('Ask first [[llm tool=bash command="echo never"]]'), { server });
    const asked = await s.waitEvent((f) => f.payload?.type === 'permission.asked' && f.payload.properties.sessionID === id, 'permission.asked');
    await s.call('POST', `/permission/${asked.payload.properties.id}/reply`, { reply: 'reject' }, { server });
    await reply;
    await s.waitIdle(id);
    s.finish();
  },

  // `always` for the first of two bash steps: is the second asked?
  async permission_always(s) {
    const server = s.ctx.askServer;
    const id = await s.session({}, { server });
    const reply = s.call('POST', `/session/${id}/message`, text('Twice [[llm tool=bash command="echo one"]] [[llm tool=bash command="echo two"]]'), { server });
    const asked = await s.waitEvent((f) => f.payload?.type === 'permission.asked' && f.payload.properties.sessionID === id, 'permission.asked');
    await s.call('POST', `/permission/${asked.payload.properties.id}/reply`, { reply: 'always' }, { server });
    await reply;
    await s.waitIdle(id);
    s.finish();
  },

  async question_reply(s) {
    const id = await s.session({});
    const reply = s.call('POST', `/session/${id}/message`, text('Choose [[llm question text="Which colour?" header="Colour" options="red,blue"]]'));
    const asked = await s.waitEvent((f) => f.payload?.type === 'question.asked' && f.payload.properties.sessionID === id, 'question.asked');
    await s.call('GET', '/question');
    await s.call('POST', `/question/${asked.payload.properties.id}/reply`, { answers: [['red']] });
    await reply;
    await s.waitIdle(id);
    await s.call('POST', `/question/${asked.payload.properties.id}/reply`, { answers: [['red']] });
    await s.call('POST', '/question/que_00000000000000000000000000/reject');
    s.finish();
  },

  // A free-text answer that is none of the options (the question has no `custom` key).
  async question_custom(s) {
    const id = await s.session({});
    const reply = s.call('POST', `/session/${id}/message`, text('Choose [[llm question text="Which colour?" options="red,blue"]]'));
    const asked = await s.waitEvent((f) => f.payload?.type === 'question.asked' && f.payload.properties.sessionID === id, 'question.asked');
    await s.call('POST', `/question/${asked.payload.properties.id}/reply`, { answers: [['purple, obviously']] });
    await reply;
    await s.waitIdle(id);
    s.finish();
  },

  async question_reject(s) {
    const id = await s.session({});
    const reply = s.call('POST', `/session/${id}/message`, text('Choose [[llm question text="Which colour?" options="red,blue" multiple]]'));
    const asked = await s.waitEvent((f) => f.payload?.type === 'question.asked' && f.payload.properties.sessionID === id, 'question.asked');
    await s.call('POST', `/question/${asked.payload.properties.id}/reject`);
    await reply;
    await s.waitIdle(id);
    s.finish();
  },

  // A bash step that prints nothing, aborted while it runs.
  async abort(s) {
    const id = await s.session({});
    const reply = s.call('POST', `/session/${id}/message`, text('Wait [[llm silent-tool]]'));
    await s.waitEvent((f) => f.payload?.type === 'message.part.updated' && f.payload.properties.part.sessionID === id && f.payload.properties.part.state?.status === 'running', 'running tool part');
    await s.call('GET', '/session/status');
    await s.call('POST', `/session/${id}/abort`);
    await reply;
    await s.waitIdle(id);
    await s.call('GET', '/session/status');
    await s.call('POST', '/session/ses_00000000000000000000000000/abort');
    s.finish();
  },

  // The provider answers 400 (no retry) and 500 (retried with backoff until aborted).
  async llm_errors(s) {
    const id = await s.session({});
    await s.call('POST', `/session/${id}/message`, text('Fail [[llm status=400]]'));
    await s.waitIdle(id);
    const retrying = await s.session({});
    const reply = s.call('POST', `/session/${retrying}/message`, text('Fail [[llm status=500]]'));
    await s.waitEvent((f) => f.payload?.type === 'session.status' && f.payload.properties.sessionID === retrying && f.payload.properties.status?.type === 'retry', 'session.status retry');
    await s.call('GET', '/session/status');
    await s.call('POST', `/session/${retrying}/abort`);
    await reply;
    await s.waitIdle(retrying);
    s.finish();
  },

  async bad_agent_model(s) {
    await s.call('GET', '/agent');
    await s.call('GET', '/config/providers');
    const a = await s.session({});
    await s.call('POST', `/session/${a}/message`, { ...text('Hi [[llm]]'), agent: 'no-such-agent' });
    const b = await s.session({});
    await s.call('POST', `/session/${b}/message`, { ...text('Hi [[llm]]'), model: { providerID: 'no-such-provider', modelID: 'x' } });
    const c = await s.session({});
    await s.call('POST', `/session/${c}/message`, { ...text('Hi [[llm]]'), model: { providerID: 'scripted', modelID: 'no-such-model' } });
    const d = await s.session({});
    await s.call('POST', `/session/${d}/message`, { ...text('Hi [[llm marker=B1]]'), bogus: true });
    await s.waitIdle(d);
    await s.call('POST', `/session/${c}/message`, text('Hi again, no model named [[llm marker=B2]]'));
    await s.call('POST', '/session/ses_00000000000000000000000000/message', text('Hi'));
    await s.call('GET', '/session/status');
    s.finish();
  },

  // An edit (read, then edit) and a new file (write), then the session's diff.
  async edit_diff(s) {
    const dir = s.ctx.server.directory;
    const id = await s.session({});
    const prompt = `Edit [[llm tool=read filePath="${dir}/README.md"]] [[llm tool=edit filePath="${dir}/README.md" oldString="# e2e project" newString="# e2e project, edited"]] [[llm tool=write filePath="${dir}/new.txt" content="new file"]]`;
    const r = await s.call('POST', `/session/${id}/message`, text(prompt));
    await s.waitIdle(id);
    const messages = await s.call('GET', `/session/${id}/message`);
    const user = messages.body.find((m) => m.info.role === 'user');
    await s.call('GET', `/session/${id}/diff?messageID=${user.info.id}`);
    await s.call('GET', `/session/${id}/diff?messageID=${r.body.info.id}`);
    await s.call('GET', `/session/${id}/diff`);
    s.finish();
  },

  async worktree(s) {
    const repo = makeGitRepo(join(s.ctx.scratch, 'worktree-repo'));
    const q = `?directory=${encodeURIComponent(repo)}`;
    const created = await s.call('POST', `/experimental/worktree${q}`, {});
    if (created.status === 200) {
      await s.waitEvent((f) => ['worktree.ready', 'worktree.failed'].includes(f.payload?.type), 'worktree.ready/failed', 60_000);
      await s.call('GET', `/experimental/worktree${q}`);
      const wq = `?directory=${encodeURIComponent(created.body.directory)}`;
      const session = await s.call('POST', `/session${wq}`, {});
      s.sessions.add(session.body.id);
      await s.call('POST', `/session/${session.body.id}/message${wq}`, text('In the worktree [[llm tool=bash command="pwd"]]'));
      await s.call('DELETE', `/experimental/worktree${q}`, { directory: created.body.directory });
    }
    const plain = join(s.ctx.scratch, 'not-a-repo');
    mkdirSync(plain, { recursive: true });
    await s.call('POST', `/experimental/worktree?directory=${encodeURIComponent(plain)}`, {});
    s.finish((f) => f.payload?.type?.startsWith('worktree.') || f.directory === repo);
  },
};

async function main() {
  const args = process.argv.slice(2);
  const straceAt = args.indexOf('--strace');
  const straceDir = straceAt >= 0 ? args.splice(straceAt, 2)[1] : undefined;
  const strace = (name) => (straceDir ? ['strace', '-f', '-e', 'trace=connect,sendto,sendmsg,sendmmsg', '-o', join(straceDir, `${name}.strace`)] : []);
  const wanted = args;
  for (const w of wanted) if (!scenarios[w]) throw new Error(`unknown scenario ${w}; known: ${Object.keys(scenarios).join(' ')}`);
  mkdirSync(OUT, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'agentd-e2e-probe-'));
  const stops = [async () => rmSync(scratch, { recursive: true, force: true })];
  const events = new EventLog();
  try {
    const llm = await startScriptedLlm();
    stops.push(llm.close);
    const server = await startOpencode({ llmUrl: llm.url, wrap: strace('main') });
    stops.push(server.stop);
    const askServer = await startOpencode({ llmUrl: llm.url, permission: { bash: 'ask' }, wrap: strace('ask') });
    stops.push(askServer.stop);
    events.follow(`${server.url}/global/event`, 'global');
    events.follow(`${askServer.url}/global/event`, 'ask-global');
    events.follow(`${server.url}/event`, 'scoped');
    const ctx = { llm, server, askServer, scratch, events };
    await sleep(500);
    const firstProviderRequest = (r) => r.body?.tools?.length;
    for (const [name, run] of Object.entries(scenarios)) {
      if (wanted.length && !wanted.includes(name)) continue;
      const started = Date.now();
      process.stdout.write(`${name} ... `);
      await run(new Scenario(ctx, name));
      console.log(`${Date.now() - started} ms`);
    }
    const full = llm.requests.find(firstProviderRequest);
    const asSent = (r) => `${JSON.stringify({ method: r.method, path: r.path, headers: r.headers, body: r.body }, null, 2)}\n`;
    if (full) writeFileSync(join(OUT, 'provider_request.json'), asSent(full));
    const title = llm.requests.find((r) => r.body && !firstProviderRequest(r));
    if (title) writeFileSync(join(OUT, 'provider_title_request.json'), asSent(title));
    const heads = (stream) => events.frames.filter((f) => f.stream === stream).slice(0, 3).map((f) => f.raw);
    const beats = events.frames.filter((f) => f.stream === 'global' && f.frame.payload?.type === 'server.heartbeat');
    writeFileSync(join(OUT, 'streams.json'), `${JSON.stringify({
      servers: { main: server.url, ask: askServer.url },
      global_event_first_frames: heads('global'),
      scoped_event_first_frames: heads('scoped'),
      heartbeat_frame: beats[0]?.raw,
      heartbeat_intervals_ms: beats.slice(1).map((b, i) => b.at - beats[i].at),
    }, null, 2)}\n`);
  } finally {
    events.close();
    for (const stop of stops.reverse()) await stop();
  }
}

// Ctrl-C: exit through process.exit, whose hook kills the servers started.
process.once('SIGINT', () => process.exit(130));
await main();
