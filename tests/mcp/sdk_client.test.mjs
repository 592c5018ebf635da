// agentd as seen by the official MCP TypeScript SDK (Client + StreamableHTTPClientTransport,
// bearer token in requestInit): connect, list the tools, start jobs on the fake upstream, wait
// with progress, read structuredContent (which the SDK validates against outputSchema), answer a
// waiting job with agents_respond or through elicitation/create (accept, decline), abort a wait
// (notifications/cancelled), cancel a job and terminate the session. Run by `node --test`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

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

const extraClients = [];

// Another client of the same agentd, declaring form elicitation and answering each
// elicitation/create with `answer(params)`; the requests it got are in `asked`.
async function elicitingClient(answer) {
  const t = new StreamableHTTPClientTransport(new URL(stack.mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${stack.token}` } },
  });
  const c = new Client({ name: 'agentd-sdk-elicit', version: '1.0.0' },
    { capabilities: { elicitation: { form: {} } } });
  const asked = [];
  c.setRequestHandler(ElicitRequestSchema, async (request) => {
    asked.push(request.params);
    return answer(request.params);
  });
  await c.connect(t);
  extraClients.push(c);
  return { client: c, asked };
}

after(async () => {
  for (const c of extraClients) await c.close();
  await client?.close();
  const status = await stack?.stop();
  assert.equal(status, 0, `agentd did not shut down cleanly:\n${stack?.agentdStderr()}`);
});

async function call(name, args, options, on = client) {
  const result = await on.callTool({ name, arguments: args }, undefined, options);
  assert.equal(result.isError, false, JSON.stringify(result.content));
  assert.deepEqual(JSON.parse(result.content[0].text), result.structuredContent);
  return result.structuredContent;
}

test('negotiates the latest protocol and names the server', () => {
  assert.deepEqual(client.getServerVersion(), { name: 'agentd', version: process.env.AGENTD_VERSION });
  assert.deepEqual(client.getServerCapabilities().tools, { listChanged: false });
  assert.match(transport.sessionId, /^[0-9a-f]{32}$/);
});

test('lists the six agents_* tools with valid schemas and annotations', async () => {
  const { tools } = await client.listTools();
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  assert.deepEqual(Object.keys(byName).sort(),
    ['agents_cancel', 'agents_peek', 'agents_respond', 'agents_start', 'agents_status', 'agents_wait']);
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  for (const t of tools) {
    assert.equal(t.inputSchema.type, 'object');
    assert.equal(t.outputSchema.type, 'object');
    assert.ok(t.title && t.description);
    ajv.compile(t.inputSchema);
    ajv.compile(t.outputSchema);
  }
  for (const name of ['agents_status', 'agents_peek', 'agents_wait'])
    assert.equal(byName[name].annotations.readOnlyHint, true);
  assert.equal(byName.agents_start.annotations.readOnlyHint, false);
  assert.equal(byName.agents_respond.annotations.readOnlyHint, false);
  assert.equal(byName.agents_cancel.annotations.destructiveHint, true);
  assert.deepEqual(byName.agents_start.inputSchema.required, ['tasks']);
  assert.deepEqual(byName.agents_respond.inputSchema.required, ['job', 'request']);
  assert.deepEqual(byName.agents_respond.outputSchema.required, ['job']);
  assert.ok(byName.agents_wait.inputSchema.properties.on_input);
  assert.ok(byName.agents_wait.outputSchema.properties.needs_input);
  assert.ok(byName.agents_peek.outputSchema.properties.steps);
  const jobView = byName.agents_status.outputSchema.properties.jobs.items;
  assert.ok(jobView.properties.state.enum.includes('waiting'));
  for (const field of ['activity', 'requests', 'answered', 'session'])
    assert.ok(jobView.properties[field], field);
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

test('agents_respond on an unknown job is a tool error', async () => {
  const result = await client.callTool({
    name: 'agents_respond',
    arguments: { job: 'job_00000000000000000000000000000000', request: 'per_1', decision: 'allow' },
  });
  assert.equal(result.isError, true);
  assert.match(result.content[0].text, /job/);
  const bad = await client.callTool({ name: 'agents_respond', arguments: { job: 'j', request: 'r' } });
  assert.equal(bad.isError, true);
  assert.match(bad.content[0].text, /decision/);
});

test('without elicitation a waiting job ends the wait; agents_respond answers it', async () => {
  const started = await call('agents_start', { tasks: [{ prompt: 'ask [[fake permission=bash]]' }] });
  const id = started.jobs[0].id;
  const waited = await call('agents_wait', { jobs: [id], timeout_ms: 20_000 });
  assert.equal(waited.done, false);
  assert.deepEqual(waited.needs_input, [id]);
  const job = waited.jobs[0];
  assert.equal(job.state, 'waiting');
  assert.equal(job.requests[0].kind, 'permission');
  assert.equal(job.requests[0].permission, 'bash');

  const responded = await call('agents_respond', { job: id, request: job.requests[0].id, decision: 'allow' });
  assert.equal(responded.job.id, id);
  const finished = await call('agents_wait', { jobs: [id], timeout_ms: 20_000 });
  assert.equal(finished.done, true);
  assert.equal(finished.jobs[0].state, 'completed');
  assert.match(finished.jobs[0].output, /permission once: ok/);
  assert.equal(finished.jobs[0].answered[0].by, 'caller');

  const peeked = await call('agents_peek', { job: id });
  assert.ok(peeked.steps.some((step) => step.tool === 'bash'), JSON.stringify(peeked.steps));
});

test('with elicitation an accepted permission is applied and the wait goes on', async () => {
  const { client: c, asked } = await elicitingClient(() => ({ action: 'accept', content: { decision: 'allow' } }));
  const started = await call('agents_start', { tasks: [{ prompt: 'ask [[fake permission=bash]]', description: 'elicit' }] }, undefined, c);
  const id = started.jobs[0].id;
  const waited = await call('agents_wait', { jobs: [id], timeout_ms: 20_000 }, undefined, c);
  assert.equal(waited.done, true);
  assert.deepEqual(waited.needs_input, []);
  assert.equal(waited.jobs[0].state, 'completed');
  assert.match(waited.jobs[0].output, /permission once: ok/);
  assert.deepEqual(waited.jobs[0].answered.map((a) => [a.decision, a.by]), [['allow', 'caller']]);
  assert.equal(asked.length, 1);
  assert.match(asked[0].message, /bash/);
  assert.deepEqual(asked[0].requestedSchema.required, ['decision']);
  assert.deepEqual(asked[0].requestedSchema.properties.decision.oneOf.map((o) => o.const),
    ['allow', 'allow_always', 'deny']);
});

test('with elicitation a question is answered from its options', async () => {
  const { client: c, asked } = await elicitingClient(() => ({ action: 'accept', content: { answer: 'B' } }));
  const started = await call('agents_start', { tasks: [{ prompt: 'q [[fake question=A|B|C]]' }] }, undefined, c);
  const id = started.jobs[0].id;
  const waited = await call('agents_wait', { jobs: [id], timeout_ms: 20_000 }, undefined, c);
  assert.equal(waited.jobs[0].state, 'completed');
  assert.match(waited.jobs[0].output, /answered: B/);
  assert.equal(asked.length, 1);
  assert.deepEqual(asked[0].requestedSchema.properties.answer.oneOf.map((o) => o.const), ['A', 'B', 'C']);
});

test('with elicitation a multiple-choice question takes an array of options', async () => {
  const { client: c, asked } = await elicitingClient(() => ({ action: 'accept', content: { answer: ['A', 'C'] } }));
  const started = await call('agents_start', { tasks: [{ prompt: 'q [[fake question=A|B|C multiple=1]]' }] }, undefined, c);
  const id = started.jobs[0].id;
  const waited = await call('agents_wait', { jobs: [id], timeout_ms: 20_000 }, undefined, c);
  assert.equal(waited.jobs[0].state, 'completed');
  assert.match(waited.jobs[0].output, /answered: A,C/);
  assert.equal(asked[0].requestedSchema.properties.answer.type, 'array');
});

test('a declined elicitation returns the wait with the job waiting, and is not asked again', async () => {
  const { client: c, asked } = await elicitingClient(() => ({ action: 'decline' }));
  const started = await call('agents_start', { tasks: [{ prompt: 'ask [[fake permission=bash]]' }] }, undefined, c);
  const id = started.jobs[0].id;
  const waited = await call('agents_wait', { jobs: [id], timeout_ms: 20_000 }, undefined, c);
  assert.equal(waited.done, false);
  assert.equal(waited.timed_out, false);
  assert.deepEqual(waited.needs_input, [id]);
  assert.equal(waited.jobs[0].state, 'waiting');
  assert.equal(asked.length, 1);

  const again = await call('agents_wait', { jobs: [id], timeout_ms: 20_000 }, undefined, c);
  assert.deepEqual(again.needs_input, [id]);
  assert.equal(asked.length, 1);

  const request = again.jobs[0].requests[0].id;
  await call('agents_respond', { job: id, request, decision: 'deny', message: 'not now' }, undefined, c);
  const finished = await call('agents_wait', { jobs: [id], timeout_ms: 20_000 }, undefined, c);
  assert.equal(finished.jobs[0].state, 'completed');
  assert.match(finished.jobs[0].output, /permission rejected: not now/);
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
