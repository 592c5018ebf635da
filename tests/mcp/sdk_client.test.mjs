// agentd as seen by the official MCP TypeScript SDK (Client + StreamableHTTPClientTransport,
// bearer token in requestInit): connect, list the tools, start jobs on the fake upstream, wait
// with progress, read structuredContent (which the SDK validates against outputSchema), abort a
// wait (notifications/cancelled), cancel a job and terminate the session. Run by `node --test`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { startStack } from './harness.mjs';

let stack;
let client;
let transport;

before(async () => {
  stack = await startStack();
  transport = new StreamableHTTPClientTransport(new URL(stack.mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${stack.token}` } },
  });
  client = new Client({ name: 'agentd-sdk-test', version: '1.0.0' });
  await client.connect(transport);
});

after(async () => {
  await client?.close();
  const status = await stack?.stop();
  assert.equal(status, 0, `agentd did not shut down cleanly:\n${stack?.agentdStderr()}`);
});

async function call(name, args, options) {
  const result = await client.callTool({ name, arguments: args }, undefined, options);
  assert.equal(result.isError, false, JSON.stringify(result.content));
  assert.deepEqual(JSON.parse(result.content[0].text), result.structuredContent);
  return result.structuredContent;
}

test('negotiates the latest protocol and names the server', () => {
  assert.deepEqual(client.getServerVersion(), { name: 'agentd', version: process.env.AGENTD_VERSION });
  assert.deepEqual(client.getServerCapabilities().tools, { listChanged: false });
  assert.match(transport.sessionId, /^[0-9a-f]{32}$/);
});

test('lists the five agents_* tools with schemas and annotations', async () => {
  const { tools } = await client.listTools();
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  assert.deepEqual(Object.keys(byName).sort(),
    ['agents_cancel', 'agents_peek', 'agents_start', 'agents_status', 'agents_wait']);
  for (const t of tools) {
    assert.equal(t.inputSchema.type, 'object');
    assert.equal(t.outputSchema.type, 'object');
    assert.ok(t.title && t.description);
  }
  for (const name of ['agents_status', 'agents_peek', 'agents_wait'])
    assert.equal(byName[name].annotations.readOnlyHint, true);
  assert.equal(byName.agents_start.annotations.readOnlyHint, false);
  assert.equal(byName.agents_cancel.annotations.destructiveHint, true);
  assert.deepEqual(byName.agents_start.inputSchema.required, ['tasks']);
});

test('starts two jobs, waits with progress, and reads structuredContent', async () => {
  const started = await call('agents_start', {
    tasks: [
      { prompt: 'first [[fake latency_ms=100]]', description: 'first' },
      { prompt: 'second [[fake latency_ms=400]]', description: 'second' },
    ],
  });
  assert.equal(started.jobs.length, 2);
  const ids = started.jobs.map((j) => j.id);

  const progress = [];
  const waited = await call('agents_wait', { jobs: ids, timeout_ms: 20_000 }, {
    onprogress: (p) => progress.push(p),
  });
  assert.equal(waited.done, true);
  assert.equal(waited.timed_out, false);
  assert.deepEqual(waited.jobs.map((j) => j.state), ['completed', 'completed']);
  assert.deepEqual(waited.jobs.map((j) => j.output), ['echo: first', 'echo: second']);
  assert.deepEqual(progress.map((p) => [p.progress, p.total]), [[1, 2], [2, 2]]);
  assert.match(progress[0].message, /first/);

  const status = await call('agents_status', { jobs: ids });
  assert.deepEqual(status.jobs.map((j) => j.state), ['completed', 'completed']);
});

test('a tool error comes back as an isError result', async () => {
  const result = await client.callTool({ name: 'agents_start', arguments: { tasks: [] } });
  assert.equal(result.isError, true);
  assert.match(result.content[0].text, /tasks/);
});

test('aborting a wait cancels the request, not the job; agents_cancel stops the job', async () => {
  const started = await call('agents_start', { tasks: [{ prompt: 'slow [[fake latency_ms=60000]]' }] });
  const id = started.jobs[0].id;

  const abort = new AbortController();
  const waiting = client.callTool({ name: 'agents_wait', arguments: { jobs: [id], timeout_ms: 60_000 } },
    undefined, { signal: abort.signal });
  setTimeout(() => abort.abort('test aborts the wait'), 200);
  await assert.rejects(waiting);

  const status = await call('agents_status', { jobs: [id] });
  assert.ok(['queued', 'running'].includes(status.jobs[0].state));
  const cancelled = await call('agents_cancel', { jobs: [id] });
  assert.equal(cancelled.jobs[0].state, 'cancelled');
});

test('terminating the session makes its id unknown', async () => {
  const sessionId = transport.sessionId;
  await transport.terminateSession();
  assert.equal(transport.sessionId, undefined);
  const res = await fetch(stack.mcpUrl, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${stack.token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'Mcp-Session-Id': sessionId,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  assert.equal(res.status, 404);
});
