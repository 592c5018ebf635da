// The OpenCode plugin packaging/opencode/agentd.ts, loaded the way OpenCode loads it (its real
// @opencode-ai/plugin dependency beside it) under Node >= 22, which runs erasable TypeScript:
// type-checks it against the package's types, then drives its tools against a real agentd and
// the fake upstream, and checks that jobs land in the OpenCode session the tool context names.
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
  const hooks = await mod.AgentdPlugin({ directory: here, worktree: here });
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

test('exposes the three tools with schemas that validate their arguments', async () => {
  assert.deepEqual(Object.keys(tools).sort(), ['agents_start', 'agents_status', 'agents_wait']);
  await assert.rejects(run('agents_start', { tasks: [] }, 'ses_x'));
  await assert.rejects(run('agents_wait', { mode: 'some' }, 'ses_x'));
});

test('starts, lists and waits for jobs in the OpenCode session', async () => {
  const session = 'ses_plugin_1';
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
  // The jobs belong to the session the context named, and to no other.
  assert.equal((await rpc('agents_status', { session })).jobs.length, 2);
  assert.equal((await rpc('agents_status', {})).jobs.length, 0);
  assert.equal((await run('agents_status', {}, 'ses_someone_else')).jobs.length, 0);
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
