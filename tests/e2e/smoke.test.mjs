// Smoke test of the e2e harness: the scripted LLM and the real OpenCode server (installed by
// install.sh), one prompt whose bash step runs to completion, checked on the reply, on
// /global/event and on what the LLM was sent; then everything started is stopped and removed.
// Exits 77 (ctest: skipped) when install.sh could not reach npm and so opencode is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { startScriptedLlm } from './scripted_llm.mjs';
import { startOpencode, OPENCODE_BIN } from './opencode_server.mjs';

if (!existsSync(OPENCODE_BIN)) {
  console.log(`SKIP: ${OPENCODE_BIN} is not installed (tests/e2e/install.sh could not reach the npm registry)`);
  process.exit(77);
}

// Every /global/event payload until stop(), in order.
function followEvents(url) {
  const payloads = [];
  const controller = new AbortController();
  const done = (async () => {
    const res = await fetch(`${url}/global/event`, { signal: controller.signal });
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer.slice(0, end).split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('');
        buffer = buffer.slice(end + 2);
        if (data) payloads.push(JSON.parse(data).payload);
      }
    }
  })().catch((e) => e);
  // The stream ending on its own (opencode died) is an error; ending by abort() is not.
  const stop = async () => {
    controller.abort();
    const error = await done;
    if (error && error.name !== 'AbortError') throw error;
  };
  return { payloads, stop };
}

async function waitFor(check, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('a prompt with a bash step runs to completion on the real opencode', { timeout: 240_000 }, async (t) => {
  const marker = `smoke-${randomUUID().slice(0, 8)}`;
  const started = Date.now();
  const cleanups = [];
  t.after(async () => { for (const cleanup of cleanups.reverse()) await cleanup(); });
  const llm = await startScriptedLlm();
  cleanups.push(llm.close);
  const opencode = await startOpencode({ llmUrl: llm.url });
  cleanups.push(async () => {
    await opencode.stop();
    assert.equal(existsSync(opencode.root), false, 'temp dirs removed');
    assert.throws(() => process.kill(-opencode.pid, 0), { code: 'ESRCH' }, 'opencode process group gone');
  });
  t.diagnostic(`opencode healthy after ${Date.now() - started} ms`);
  const events = followEvents(opencode.url);
  cleanups.push(events.stop);

  try {
    const post = async (path, body) => {
      const res = await fetch(`${opencode.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(180_000) });
      assert.equal(res.status, 200, `POST ${path}`);
      return res.json();
    };
    const session = await post('/session', {});
    const promptAt = Date.now();
    const reply = await post(`/session/${session.id}/message`, { parts: [{ type: 'text', text: `Run it [[llm tool=bash command="echo ${marker}"]]` }] });
    t.diagnostic(`prompt answered after ${Date.now() - promptAt} ms`);

    assert.equal(reply.info.role, 'assistant');
    assert.equal(reply.info.error, undefined);
    assert.equal(reply.info.finish, 'stop');
    assert.equal(reply.parts.filter((p) => p.type === 'text').map((p) => p.text).join(''), `The tool said: ${marker}`);
    assert.deepEqual(reply.info.tokens, { total: 18, input: 11, output: 7, reasoning: 0, cache: { write: 0, read: 0 } });
    assert.ok(reply.info.cost > 0, `cost from the configured price: ${reply.info.cost}`);

    const mine = (p) => (p.properties.sessionID ?? p.properties.part?.sessionID) === session.id;
    await waitFor(() => events.payloads.find((p) => p.type === 'session.idle' && mine(p)), 'session.idle', 30_000);
    const toolStates = events.payloads
      .filter((p) => p.type === 'message.part.updated' && mine(p) && p.properties.part.type === 'tool')
      .map((p) => p.properties.part);
    assert.deepEqual([...new Set(toolStates.map((p) => p.state.status))], ['pending', 'running', 'completed']);
    const completed = toolStates.at(-1);
    assert.equal(completed.tool, 'bash');
    assert.match(completed.callID, /^call_/);
    assert.equal(completed.state.input.command, `echo ${marker}`);
    assert.equal(completed.state.output.trim(), marker);
    assert.equal(typeof completed.state.title, 'string');
    assert.ok(completed.state.time.start <= completed.state.time.end, 'tool time.start <= time.end');

    const toolResults = llm.requests.flatMap((r) => r.body?.messages ?? []).filter((m) => m.role === 'tool');
    assert.ok(toolResults.some((m) => String(m.content).includes(marker)), 'the LLM was sent the tool output');
  } catch (e) {
    console.error(`opencode's log (tail):\n${opencode.logs().slice(-6000)}`);
    throw e;
  }
  t.diagnostic(`total ${Date.now() - started} ms`);
});
