// The OpenCode plugin packaging/opencode/agentd.ts against the real OpenCode server: ONE `opencode
// serve` (bash asks) driven by the scripted LLM, a real agentd ($AGENTD, token auth) in front of
// it, and the plugin loaded as tests/plugin loads it, its `client` a real @opencode-ai/sdk client
// of that server. Checks that sub-sessions are children of the calling session, that a job
// nobody waits for is announced there once (noReply: no LLM turn), that a waited-for job is not,
// that agents_respond answers a real permission request, what a notice does to a running turn,
// and a caller session opencode does not know. A plain script (exit 77 = skip).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startScriptedLlm } from './scripted_llm.mjs';
import { startOpencode, OPENCODE_BIN } from './opencode_server.mjs';
import { pollUntil, spawnAgentd } from './agentd_process.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const pluginSource = join(here, '../../packaging/opencode/agentd.ts');
const pluginModules = join(here, '../plugin/node_modules');

if (!existsSync(OPENCODE_BIN)) {
  console.log(`SKIP: ${OPENCODE_BIN} is not installed (tests/e2e/install.sh could not reach npm)`);
  process.exit(77);
}
if (!existsSync(join(pluginModules, '.agentd-installed-lock'))) {
  console.log(`SKIP: ${pluginModules} is not installed (see the test plugin_npm_install)`);
  process.exit(77);
}
const AGENTD = process.env.AGENTD ?? process.argv[2];
if (!AGENTD || !existsSync(AGENTD)) {
  console.error(`plugin.test.mjs: the agentd binary is not given or missing (AGENTD=${AGENTD})`);
  process.exit(1);
}

// A job's whole run (a fresh server's first prompt takes up to ~25 s on loaded cores).
const JOB_MS = Number(process.env.E2E_JOB_MS ?? 60_000);
const tag = () => randomUUID().slice(0, 8);

// A real agentd on 127.0.0.1:0 with token auth: the plugin finds the token in its state dir.
function startAgentd(upstreamUrl) {
  return spawnAgentd(AGENTD, ['--auth', 'token', '--upstream-url', upstreamUrl, '--upstream-permissions', 'ask'],
                     'agentd-e2e-plugin-', 'agentd listening');
}

describe('the OpenCode plugin on the real opencode server', { timeout: 200_000 }, () => {
  const started = Date.now();
  const cleanups = [];
  let llm;
  let opencode;
  let agentd;
  let tools;
  let z;
  // Every request the plugin's OpenCode client made: { method, path, status }.
  const clientCalls = [];

  const ocFetch = async (path, init = {}) => {
    const res = await fetch(`${opencode.url}${path}`, {
      ...init, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(JOB_MS),
    });
    assert.equal(res.status, 200, `${init.method ?? 'GET'} ${path}: HTTP ${res.status}`);
    return res.json();
  };
  // A session on the real server, titled so that opencode writes no title of its own.
  const parentSession = async (title) =>
    (await ocFetch('/session', { method: 'POST', body: JSON.stringify({ title }) })).id;
  const messages = (session) => ocFetch(`/session/${session}/message`);
  const noticesOf = async (session, jobId) => (await messages(session)).filter((m) =>
    m.parts.some((p) => p.type === 'text' && p.text.startsWith(`[agentd] Background job ${jobId}`)));
  const noticeOf = async (session, jobId) =>
    pollUntil(async () => (await noticesOf(session, jobId))[0], `the notice of ${jobId}`, JOB_MS);

  // What OpenCode passes a tool's execute(); the plugin reads sessionID and abort.
  const context = (sessionID) => ({
    sessionID, messageID: 'msg_1', agent: 'build', directory: opencode.directory,
    worktree: opencode.directory, abort: new AbortController().signal, metadata() {},
    ask: async () => {},
  });
  // The tool's arguments parsed with its own schema first, as OpenCode does.
  const run = async (name, args, sessionID) => {
    const parsed = z.object(tools[name].args).parse(args);
    const raw = await tools[name].execute(parsed, context(sessionID));
    assert.equal(raw, JSON.stringify(JSON.parse(raw)), 'compact JSON');
    return JSON.parse(raw);
  };
  const start = async (session, task) => {
    const { jobs } = await run('agents_start', { tasks: [task] }, session);
    assert.equal(jobs.length, 1);
    return jobs[0];
  };

  before(async () => {
    llm = await startScriptedLlm();
    cleanups.push(llm.close);
    opencode = await startOpencode({ llmUrl: llm.url, permission: { bash: 'ask' } });
    cleanups.push(opencode.stop);
    // A fresh server's first prompt is silent for ~12 s (FINDINGS.md): warm it while agentd starts.
    const warm = async () => {
      const session = await parentSession('warm-up');
      const reply = await ocFetch(`/session/${session}/message`, {
        method: 'POST', body: JSON.stringify({ parts: [{ type: 'text', text: 'Hi [[llm marker=warm]]' }] }),
      });
      assert.equal(reply.info.error, undefined, `warm-up prompt: ${JSON.stringify(reply.info)}`);
    };
    const launch = async () => {
      agentd = await startAgentd(opencode.url);
      cleanups.push(agentd.stop);
    };
    await Promise.all([warm(), launch()]);

    // The plugin's directory as OpenCode has it: the file beside node_modules with its dependency.
    const pluginDir = mkdtempSync(join(tmpdir(), 'agentd-e2e-plugin-dir-'));
    cleanups.push(async () => rmSync(pluginDir, { recursive: true, force: true }));
    copyFileSync(pluginSource, join(pluginDir, 'agentd.ts'));
    symlinkSync(pluginModules, join(pluginDir, 'node_modules'));
    writeFileSync(join(pluginDir, 'package.json'), '{"type":"module"}\n');
    // The SDK and zod resolved from there, exactly as the plugin resolves its imports.
    writeFileSync(join(pluginDir, 'deps.mjs'),
                  "export { createOpencodeClient } from '@opencode-ai/sdk';\nexport { z } from 'zod';\n");
    const deps = await import(pathToFileURL(join(pluginDir, 'deps.mjs')));
    z = deps.z;
    // agentd found as a user's OpenCode finds it: its URL, and the token file in its state dir.
    process.env.AGENTD_URL = agentd.url;
    process.env.AGENTD_STATE_DIR = agentd.stateDir;
    delete process.env.AGENTD_TOKEN;
    const recording = async (request, init) => {
      const res = await fetch(request, init);
      clientCalls.push({ method: request.method, path: new URL(request.url).pathname, status: res.status });
      return res;
    };
    const client = deps.createOpencodeClient({
      baseUrl: opencode.url, directory: opencode.directory, fetch: recording,
    });
    const mod = await import(pathToFileURL(join(pluginDir, 'agentd.ts')));
    const hooks = await mod.AgentdPlugin({
      client, directory: opencode.directory, worktree: opencode.directory, serverUrl: new URL(opencode.url),
    });
    tools = hooks.tool;
    console.log(`# opencode warm and agentd up after ${Date.now() - started} ms`);
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    console.log(`# suite total ${Date.now() - started} ms`);
  });

  const timed = (name, fn) => it(name, async (t) => {
    const t0 = Date.now();
    try {
      await fn();
    } catch (e) {
      console.error(`--- agentd stderr tail:\n${agentd?.stderr().slice(-3000)}`);
      console.error(`--- opencode log tail:\n${opencode?.logs().slice(-4000)}`);
      throw e;
    }
    t.diagnostic(`${Date.now() - t0} ms`);
  });

  timed('1. agents_start from a session: its job\'s upstream session is a child of it', async () => {
    const parent = await parentSession('parent 1');
    const marker = `child-${tag()}`;
    const job = await start(parent, { prompt: `Say it [[llm marker=${marker}]]`, description: 'child' });
    const waited = await run('agents_wait', { jobs: [job.id], timeout_ms: JOB_MS }, parent);
    assert.deepEqual([waited.done, waited.timed_out], [true, false], JSON.stringify(waited));
    const [done] = waited.jobs;
    assert.equal(done.state, 'completed', JSON.stringify(done));
    assert.equal(done.output, `Scripted answer ${marker}.`);
    const child = done.upstream?.session;
    assert.match(child ?? '', /^ses_/, JSON.stringify(done));
    assert.equal((await ocFetch(`/session/${child}`)).parentID, parent);
    const children = await ocFetch(`/session/${parent}/children`);
    assert.deepEqual(children.map((s) => s.id), [child]);
    // The job belongs to the calling session: another session lists none of it.
    const mine = await run('agents_status', {}, parent);
    assert.deepEqual(mine.jobs.map((j) => j.id), [job.id]);
    assert.deepEqual((await run('agents_status', {}, await parentSession('other'))).jobs, []);
  });

  timed('2. jobs nobody waits for: one notice each in the parent session, and no LLM turn', async () => {
    const parent = await parentSession('parent 2');
    const marker = `bg-${tag()}`;
    const ok = await start(parent, { prompt: `Work [[llm marker=${marker}]]`, description: 'bg' });
    // A 400 from the provider fails opencode's turn at once (a 5xx would be retried).
    const bad = await start(parent, { prompt: 'Fail [[llm status=400]]' });
    const okNotice = await noticeOf(parent, ok.id);
    assert.equal(okNotice.info.role, 'user');
    assert.equal(okNotice.parts.length, 1);
    assert.equal(okNotice.parts[0].text,
                 `[agentd] Background job ${ok.id} (bg) finished: completed.\nScripted answer ${marker}.\n` +
                 `Use agents_peek or agents_status with job ${ok.id} for the rest.`);
    const badNotice = await noticeOf(parent, bad.id);
    const failedHead = `[agentd] Background job ${bad.id} finished: failed.\n`;
    assert.ok(badNotice.parts[0].text.startsWith(failedHead), badNotice.parts[0].text);
    assert.match(badNotice.parts[0].text.slice(failedHead.length), /^\w+: \S/);
    console.log(`# the failed job's notice: ${JSON.stringify(badNotice.parts[0].text)}`);
    // Reading them now announces nothing again; a later job's notice is the barrier.
    await run('agents_status', {}, parent);
    const last = await start(parent, { prompt: `Again [[llm marker=${marker}-2]]` });
    await noticeOf(parent, last.id);
    assert.equal((await noticesOf(parent, ok.id)).length, 1);
    assert.equal((await noticesOf(parent, bad.id)).length, 1);
    // noReply: the parent holds only the three notices, is idle, and its text never reached the LLM.
    const all = await messages(parent);
    assert.deepEqual(all.map((m) => m.info.role), ['user', 'user', 'user']);
    const status = await ocFetch('/session/status');
    assert.notEqual(status[parent]?.type, 'busy');
    const sent = llm.requests.filter((r) => JSON.stringify(r.body ?? {}).includes('[agentd] Background job'));
    assert.deepEqual(sent, [], 'no LLM request carried a notice');
    const posts = clientCalls.filter((c) => c.path === `/session/${parent}/message`);
    assert.deepEqual(posts.map((c) => [c.method, c.status]), [['POST', 200], ['POST', 200], ['POST', 200]]);
  });

  timed('3. a job the model waited for until it ended is not announced', async () => {
    const parent = await parentSession('parent 3');
    const waitedFor = await start(parent, { prompt: `Wait for me [[llm marker=w-${tag()}]]` });
    const out = await run('agents_wait', { timeout_ms: JOB_MS }, parent);
    assert.deepEqual(out.jobs.map((j) => [j.id, j.state]), [[waitedFor.id, 'completed']]);
    const barrier = await start(parent, { prompt: `Barrier [[llm marker=b-${tag()}]]` });
    await noticeOf(parent, barrier.id);
    assert.deepEqual(await noticesOf(parent, waitedFor.id), []);
    assert.equal((await messages(parent)).length, 1);
  });

  timed('4. agents_respond answers a real permission request and the job completes', async () => {
    const parent = await parentSession('parent 4');
    const marker = `allowed-${tag()}`;
    const job = await start(parent, { prompt: `Run it [[llm tool=bash command="echo ${marker}"]]` });
    const asked = await run('agents_wait', { jobs: [job.id], timeout_ms: JOB_MS }, parent);
    assert.deepEqual([asked.done, asked.timed_out, asked.needs_input], [false, false, [job.id]],
                     JSON.stringify(asked));
    const [request] = asked.jobs[0].requests;
    assert.deepEqual([request.kind, request.permission, request.patterns],
                     ['permission', 'bash', [`echo ${marker}`]]);
    // Hostile answers: an unknown request id (agentd), a decision outside the schema (the tool's).
    const respond = (id, decision) =>
      run('agents_respond', { job: job.id, request: id, decision }, parent);
    await assert.rejects(respond('per_none', 'allow'), /agentd error -32602/);
    await assert.rejects(respond(request.id, 'yes'), /invalid/i);
    const responded = await respond(request.id, 'allow');
    assert.equal(responded.job.id, job.id);
    const out = await run('agents_wait', { jobs: [job.id], timeout_ms: JOB_MS }, parent);
    assert.deepEqual([out.done, out.timed_out], [true, false], JSON.stringify(out));
    const [done] = out.jobs;
    assert.equal(done.state, 'completed', JSON.stringify(done));
    assert.equal(done.output, `The tool said: ${marker}`);
    assert.deepEqual(done.answered.map((r) => [r.id, r.decision, r.by]), [[request.id, 'allow', 'caller']]);
  });

  // The usual case: the model started a job and works on. opencode stores the notice at once and
  // the turn's next LLM request carries it; no turn of its own follows.
  timed('5. a notice while the parent session runs a turn: the turn sees it, no extra turn', async () => {
    const parent = await parentSession('parent 6');
    const marker = `busy-${tag()}`;
    const res = await fetch(`${opencode.url}/session/${parent}/prompt_async`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ parts: [{ type: 'text', text: `Run [[llm tool=bash command="echo ${marker}"]]` }] }),
    });
    assert.equal(res.status, 204);
    // Its bash step asks, so the turn stays open until answered.
    const permission = await pollUntil(async () =>
      (await ocFetch('/permission')).find((p) => p.sessionID === parent), 'the parent\'s bash permission', JOB_MS);
    const job = await start(parent, { prompt: `Meanwhile [[llm marker=m-${tag()}]]` });
    const notice = await noticeOf(parent, job.id);
    assert.equal((await ocFetch('/session/status'))[parent]?.type, 'busy');
    await ocFetch(`/permission/${permission.id}/reply`, { method: 'POST', body: JSON.stringify({ reply: 'once' }) });
    await pollUntil(async () => (await ocFetch('/session/status'))[parent]?.type !== 'busy', 'the turn\'s end', JOB_MS);
    const all = await messages(parent);
    assert.deepEqual(all.map((m) => m.info.role), ['user', 'assistant', 'user', 'assistant']);
    assert.equal(all[2].info.id, notice.info.id);
    const turn = llm.requests.filter((r) => JSON.stringify(r.body?.messages ?? []).includes(marker) &&
                                            r.body?.tools?.length);
    assert.equal(turn.length, 2, 'the bash call and the answer after it');
    assert.ok(JSON.stringify(turn[1].body.messages).includes(`[agentd] Background job ${job.id}`),
              'the turn\'s next request carries the notice');
  });

  timed('6. a caller session opencode does not know: a dangling child, the notice refused', async () => {
    const unknown = `ses_agentdE2e${tag()}`;
    const job = await start(unknown, { prompt: `Orphan [[llm marker=o-${tag()}]]` });
    const path = `/session/${unknown}/message`;
    await pollUntil(() => clientCalls.some((c) => c.path === path), 'the notice\'s POST', JOB_MS);
    assert.deepEqual(clientCalls.filter((c) => c.path === path).map((c) => c.status), [404]);
    const [view] = (await run('agents_status', { jobs: [job.id] }, unknown)).jobs;
    assert.equal(view.state, 'completed', JSON.stringify(view));
    // opencode 1.18.33 accepts a parentID naming no session (FINDINGS.md).
    assert.equal((await ocFetch(`/session/${view.upstream.session}`)).parentID, unknown);
  });
});
