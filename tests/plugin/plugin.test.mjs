// The OpenCode plugin packaging/opencode/agentd.ts, loaded the way OpenCode loads it (its real
// @opencode-ai/plugin dependency beside it) under Node >= 22, which runs erasable TypeScript:
// type-checks it against the package's types, then drives its tools against a real agentd and
// the fake upstream, and checks that jobs land in the OpenCode session the tool context names,
// that their upstream sessions are its children, and that a job nobody waits for is announced
// in that session (through a recording stand-in for OpenCode's client).
// Also connects to agentd's /mcp with the MCP configuration snippets of packaging/mcp/.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { z } from 'zod';

import { startStack } from '../mcp/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const pluginSource = join(here, '../../packaging/opencode/agentd.ts');

let stack;
let baseUrl;
let pluginDir;
let tools;
// What the plugin posted through client.session.prompt, in order.
const posts = [];

// What OpenCode passes a tool's execute(); only sessionID and abort matter to the plugin.
function context(sessionID) {
  return { sessionID, messageID: 'msg_1', agent: 'build', directory: here, worktree: here,
           abort: new AbortController().signal, metadata() {}, ask: async () => {} };
}

async function rpc(method, params) {
  const res = await fetch(`${baseUrl}/rpc`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${stack.token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return (await res.json()).result;
}

// A session on the fake upstream, so that agentd can create children of it.
async function upstreamSession() {
  const res = await fetch(`${stack.upstreamUrl}/session`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}',
  });
  assert.equal(res.status, 200);
  return (await res.json()).id;
}

async function upstreamInfo(id) {
  return (await fetch(`${stack.upstreamUrl}/session/${id}`)).json();
}

// Polls until pred() holds, failing after a deadline.
async function until(pred, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function noticesFor(session, jobId) {
  return posts.filter((p) => p.path.id === session && p.body.parts[0].text.includes(jobId));
}

// Parses the tool's arguments with its own zod schema first, as OpenCode does.
async function run(name, args, sessionID) {
  const def = tools[name];
  const parsed = z.object(def.args).parse(args);
  return JSON.parse(await def.execute(parsed, context(sessionID)));
}

before(async () => {
  stack = await startStack();
  baseUrl = stack.mcpUrl.replace(/\/mcp$/, '');
  // A plugin directory as OpenCode has it: the file, and node_modules with its dependency.
  pluginDir = mkdtempSync(join(tmpdir(), 'agentd-plugin-'));
  copyFileSync(pluginSource, join(pluginDir, 'agentd.ts'));
  symlinkSync(join(here, 'node_modules'), join(pluginDir, 'node_modules'));
  writeFileSync(join(pluginDir, 'package.json'), '{"type":"module"}\n');
  // The token as agentctl finds it: STATE_DIR/token, no $AGENTD_TOKEN.
  writeFileSync(join(pluginDir, 'token'), `${stack.token}\n`);
  process.env.AGENTD_URL = `${baseUrl}/`;
  process.env.AGENTD_STATE_DIR = pluginDir;
  delete process.env.AGENTD_TOKEN;

  const mod = await import(pathToFileURL(join(pluginDir, 'agentd.ts')));
  assert.deepEqual(Object.keys(mod), ['AgentdPlugin'], 'OpenCode calls every export as a plugin');
  const client = { session: { prompt: async (options) => { posts.push(options); } } };
  const hooks = await mod.AgentdPlugin({ client, directory: here, worktree: here });
  tools = hooks.tool;
});

after(async () => {
  const status = await stack?.stop();
  if (pluginDir) rmSync(pluginDir, { recursive: true, force: true });
  assert.equal(status, 0, `agentd did not shut down cleanly:\n${stack?.agentdStderr()}`);
});

test('type-checks against @opencode-ai/plugin', async () => {
  const tsc = join(here, 'node_modules/typescript/bin/tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', join(here, 'tsconfig.json')]);
});

test('exposes the six tools with schemas that validate their arguments', async () => {
  assert.deepEqual(Object.keys(tools).sort(), ['agents_cancel', 'agents_peek', 'agents_respond',
                                               'agents_start', 'agents_status', 'agents_wait']);
  const parse = (name, args) => z.object(tools[name].args).parse(args);
  await assert.rejects(run('agents_start', { tasks: [] }, 'ses_x'));
  await assert.rejects(run('agents_wait', { mode: 'some' }, 'ses_x'));
  await assert.rejects(run('agents_cancel', { jobs: [] }, 'ses_x'));
  await assert.rejects(run('agents_respond', { job: 'job_1', request: 'r', decision: 'maybe' },
                           'ses_x'));
  assert.throws(() => parse('agents_start', { tasks: [{ prompt: 'p', unknown: 1 }] }));
  assert.throws(() => parse('agents_start', { tasks: [{ prompt: 'p', budget: { max_cost: -1 } }] }));
  assert.throws(() => parse('agents_start', { tasks: [{ prompt: 'p', permissions: 'some' }] }));
  const full = { prompt: 'p', permissions: 'deny', budget: { max_cost: 0.5, max_tokens: 10 },
                 continue: 'job_0' };
  assert.deepEqual(parse('agents_start', { tasks: [full] }).tasks[0], full);
});

test('returns compact JSON to the model', async () => {
  const raw = await tools.agents_status.execute({}, context('ses_compact'));
  assert.equal(raw, JSON.stringify(JSON.parse(raw)));
  assert.doesNotMatch(raw, /\n/);
});

test('starts, lists and waits for jobs in the OpenCode session', async () => {
  const session = await upstreamSession();
  const started = await run('agents_start', {
    tasks: [{ prompt: 'alpha', description: 'first' }, { prompt: 'boom [[fake fault=500]]' }],
  }, session);
  assert.equal(started.jobs.length, 2);
  for (const job of started.jobs) assert.match(job.state, /^(queued|running)$/);

  const ids = started.jobs.map((j) => j.id);
  const waited = await run('agents_wait', { jobs: ids, timeout_ms: 10_000 }, session);
  assert.equal(waited.done, true);
  assert.equal(waited.timed_out, false);
  const byId = Object.fromEntries(waited.jobs.map((j) => [j.id, j]));
  const [ok, bad] = ids.map((id) => byId[id]);
  assert.equal(ok.state, 'completed');
  assert.equal(ok.description, 'first');
  assert.match(ok.output, /echo: alpha/);
  assert.equal(bad.state, 'failed');
  assert.equal(bad.error.kind, 'upstream');
  assert.equal(bad.error.http_status, 500);

  const status = await run('agents_status', { jobs: [ids[0]] }, session);
  assert.deepEqual(status.jobs.map((j) => j.state), ['completed']);
  // The sub-sessions are children of the calling session, as OpenCode's UI shows them.
  const child = await upstreamInfo(ok.upstream.session);
  assert.equal(child.parentID, session);
  const peeked = await run('agents_peek', { job: ids[0] }, session);
  assert.match(JSON.stringify(peeked), /echo: alpha/);
  const cancelled = await run('agents_cancel', { jobs: [ids[0]] }, session);
  assert.equal(cancelled.jobs[0].state, 'completed');  // finished jobs stay as they are
  await assert.rejects(run('agents_respond', { job: ids[0], request: 'req_none', decision: 'allow' },
                           session), /agentd error/);
  // The jobs belong to the session the context named, and to no other.
  assert.equal((await rpc('agents_status', { session })).jobs.length, 2);
  assert.equal((await rpc('agents_status', {})).jobs.length, 0);
  assert.equal((await run('agents_status', {}, 'ses_someone_else')).jobs.length, 0);
});

test('announces a job nobody waited for in its session, once, with its outcome', async () => {
  const session = await upstreamSession();
  const started = await run('agents_start', {
    tasks: [{ prompt: 'beta', description: 'bg' }, { prompt: 'boom [[fake fault=500]]' }],
  }, session);
  const [ok, bad] = started.jobs.map((j) => j.id);
  await until(() => noticesFor(session, ok).length > 0 && noticesFor(session, bad).length > 0,
              'both notices');
  const [okNotice] = noticesFor(session, ok);
  assert.equal(okNotice.body.noReply, true);
  assert.match(okNotice.body.parts[0].text, /\(bg\) finished: completed\.\necho: beta/);
  assert.match(okNotice.body.parts[0].text, /agents_peek or agents_status with job job_/);
  assert.match(noticesFor(session, bad)[0].body.parts[0].text, /finished: failed\.\nupstream/);
  // Reading them now does not announce them again.
  await run('agents_status', {}, session);
  await run('agents_wait', { jobs: [ok, bad], timeout_ms: 1000 }, session);
  assert.equal(noticesFor(session, ok).length, 1);
  assert.equal(noticesFor(session, bad).length, 1);
});

test('does not announce a job whose result the model waited for', async () => {
  const session = await upstreamSession();
  const first = await run('agents_start', { tasks: [{ prompt: 'gamma' }] }, session);
  const waited = await run('agents_wait', { timeout_ms: 10_000 }, session);
  assert.equal(waited.jobs[0].state, 'completed');
  // A later job's notice is the barrier: the first one's would have come before it.
  const second = await run('agents_start', { tasks: [{ prompt: 'delta' }] }, session);
  await until(() => noticesFor(session, second.jobs[0].id).length > 0, 'the second notice');
  assert.equal(noticesFor(session, first.jobs[0].id).length, 0);
  assert.equal(posts.filter((p) => p.path.id === session).length, 1);
});

test('reports agentd errors and a bad token as tool failures', async () => {
  await assert.rejects(
    tools.agents_wait.execute({ timeout_ms: 99_999_999 }, context('ses_x')),
    /agentd error -32602/);
  process.env.AGENTD_TOKEN = 'not-the-token';  // the environment wins over the file
  try {
    await assert.rejects(tools.agents_status.execute({}, context('ses_x')), /HTTP 401/);
  } finally {
    delete process.env.AGENTD_TOKEN;
  }
});

// agentd ignores a relative $XDG_STATE_HOME (the XDG spec says so; common/state_dir.cpp), so the
// plugin must too, or it looks for the token where agentd never writes it.
test('finds the token under $HOME when $XDG_STATE_HOME is relative, as agentd does', async () => {
  const names = ['AGENTD_STATE_DIR', 'STATE_DIRECTORY', 'HOME', 'XDG_STATE_HOME'];
  const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]));
  const home = join(pluginDir, 'home');
  mkdirSync(join(home, '.local/state/agentd'), { recursive: true });
  writeFileSync(join(home, '.local/state/agentd/token'), `${stack.token}\n`);
  delete process.env.AGENTD_STATE_DIR;
  delete process.env.STATE_DIRECTORY;
  process.env.HOME = home;
  process.env.XDG_STATE_HOME = 'relative-state';
  try {
    const status = JSON.parse(await tools.agents_status.execute({}, context('ses_xdg')));
    assert.deepEqual(status.jobs, []);
  } finally {
    for (const name of names) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  }
});

// The snippet's URL and headers, with the default port and the token placeholders filled in the
// way the client would, must get through agentd's MCP initialize.
async function initializeWith(snippet, server) {
  const config = JSON.parse(readFileSync(join(here, '../../packaging/mcp', snippet), 'utf8'));
  const entry = (config.mcpServers ?? config.mcp).agentd;
  const url = entry.url.replace('http://127.0.0.1:7077', baseUrl);
  const headers = Object.fromEntries(Object.entries(entry.headers).map(([name, value]) => [
    name, value.replace('${AGENTD_TOKEN}', stack.token)
      .replace('{file:~/.local/state/agentd/token}', stack.token)]));
  assert.equal(entry.type, server);
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json',
               Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {
      protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: snippet, version: '1' } } }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const text = await res.text();
  const json = JSON.parse(text.startsWith('{') ? text : text.match(/^data: (.*)$/m)[1]);
  assert.equal(json.result.serverInfo.name, 'agentd');
}

test('the MCP snippets for Claude Code and OpenCode reach agentd', async () => {
  await initializeWith('claude-code.mcp.json', 'http');
  await initializeWith('opencode.json', 'remote');
});
