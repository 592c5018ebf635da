// Every MCP snippet of packaging/mcp/ against a real agentd (port 0) and the fake upstream: its
// shape checked against its client's documentation, then the URL and headers it yields (token,
// env var or input filled in as its client does) drive the official MCP SDK client through
// initialize, tools/list, agents_start and agents_wait. Also: a snippet whose token was never
// filled in is refused, and the Agentd-Session header pins jobs across MCP sessions.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { startStack } from '../mcp/harness.mjs';
import { CLIENTS, loadSnippet, retarget } from './snippets.mjs';

const HOME = '/home/editor';
let stack;
const clients = [];

before(async () => { stack = await startStack(); });

after(async () => {
  for (const c of clients) await c.close();
  const status = await stack?.stop();
  assert.equal(status, 0, `agentd did not shut down cleanly:\n${stack?.agentdStderr()}`);
});

// What a user who followed the README has: the token in AGENTD_TOKEN, typed into a prompt or
// pasted into the file, and in ~/.local/state/agentd/token (read from the test's state dir).
function setUp(token) {
  return {
    token,
    pasted: token,
    env: { AGENTD_TOKEN: token },
    home: HOME,
    readFile: (path) => {
      assert.equal(path, `${HOME}/.local/state/agentd/token`);
      return `${token}\n`;
    },
  };
}

async function connect({ url, headers }) {
  const transport = new StreamableHTTPClientTransport(new URL(retarget(url, stack.mcpUrl)), {
    requestInit: { headers },
  });
  const client = new Client({ name: 'agentd-editor-snippet', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

async function call(client, name, args) {
  const result = await client.callTool({ name, arguments: args });
  assert.equal(result.isError, false, JSON.stringify(result.content));
  return result.structuredContent;
}

for (const [name, snippet] of Object.entries(CLIENTS)) {
  test(`${snippet.file} has the shape ${name}'s documentation gives`, () => {
    snippet.check(loadSnippet(snippet.file));
  });

  test(`${snippet.file} starts a job on the real daemon and waits for it`, async () => {
    const client = await connect(snippet.resolve(loadSnippet(snippet.file), setUp(stack.token)));
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'agents_start') && tools.some((t) => t.name === 'agents_wait'));
    const started = await call(client, 'agents_start', {
      tasks: [{ prompt: `hello from ${name} [[fake latency_ms=50]]`, description: name }],
    });
    assert.equal(started.jobs.length, 1);
    const waited = await call(client, 'agents_wait', { jobs: [started.jobs[0].id], timeout_ms: 20_000 });
    assert.equal(waited.done, true);
    assert.equal(waited.jobs[0].state, 'completed');
    assert.equal(waited.jobs[0].output, `echo: hello from ${name}`);
  });
}

// The SDK's StreamableHTTPError carries the HTTP status as `code`.
const unauthorized = (error) => error.code === 401;

test('a snippet whose token was never filled in is refused (401)', async () => {
  const unset = { ...setUp(''), env: {} };
  for (const name of ['cursor', 'codex', 'claude-code']) {
    const { file } = CLIENTS[name];
    await assert.rejects(connect(CLIENTS[name].resolve(loadSnippet(file), unset)), unauthorized, name);
  }
  const zed = loadSnippet(CLIENTS.zed.file);
  const left = { url: zed.context_servers.agentd.url, headers: zed.context_servers.agentd.headers };
  await assert.rejects(connect(left), unauthorized, 'Zed with <agentd-token> left in');
});

test('Agentd-Session added to a snippet keeps the jobs listed for a restarted client', async () => {
  const base = CLIENTS.cursor.resolve(loadSnippet(CLIENTS.cursor.file), setUp(stack.token));
  const pinned = { url: base.url, headers: { ...base.headers, 'Agentd-Session': 'editors-test' } };
  const first = await connect(pinned);
  const started = await call(first, 'agents_start', { tasks: [{ prompt: 'pinned [[fake latency_ms=10]]' }] });
  const id = started.jobs[0].id;
  await call(first, 'agents_wait', { jobs: [id], timeout_ms: 20_000 });

  const restarted = await call(await connect(pinned), 'agents_status', {});
  assert.deepEqual(restarted.jobs.map((j) => j.id), [id]);
  assert.equal(restarted.jobs[0].session, 'editors-test');
  const unpinned = await call(await connect(base), 'agents_status', {});
  assert.ok(!unpinned.jobs.some((j) => j.id === id), 'a client without the header has its own session');
});
