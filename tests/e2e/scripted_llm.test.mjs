// The scripted LLM on its own (no opencode needed): cue parsing, which turn a conversation gets,
// and the OpenAI wire format of its streamed and plain answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cues, nextTurn, startScriptedLlm, MODEL_ID } from './scripted_llm.mjs';

const TOOLS = [{ type: 'function', function: { name: 'bash', parameters: {} } }];
const user = (content) => ({ role: 'user', content });
const callOf = (name, args) => ({ role: 'assistant', content: '', tool_calls: [{ id: 'call_1', type: 'function', function: { name, arguments: JSON.stringify(args) } }] });

test('cues: bare words and numbers, quoted values with escapes, several blocks', () => {
  assert.deepEqual(cues('a [[llm tool=bash command="echo \\"hi\\" ]]x" timeout=5 n="5" on=true]] b [[llm silent-tool]]'), [
    { tool: 'bash', command: 'echo "hi" ]]x', timeout: 5, n: '5', on: true },
    { 'silent-tool': true },
  ]);
  assert.deepEqual(cues('no cue here'), []);
  assert.throws(() => cues('[[llm =oops]]'), /bad \[\[llm\]\] cue/);
});

test('nextTurn walks the tool cues in order, then quotes the last tool result', () => {
  const prompt = user('go [[llm tool=bash command="echo one"]] [[llm tool=read filePath="/x"]]');
  assert.deepEqual(nextTurn({ tools: TOOLS, messages: [prompt] }).toolCall, { name: 'bash', arguments: { command: 'echo one' } });
  const afterFirst = [prompt, callOf('bash', {}), { role: 'tool', tool_call_id: 'call_1', content: 'one\n' }];
  assert.deepEqual(nextTurn({ tools: TOOLS, messages: afterFirst }).toolCall, { name: 'read', arguments: { filePath: '/x' } });
  const afterBoth = [...afterFirst, callOf('read', {}), { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: 'contents' }] }];
  assert.equal(nextTurn({ tools: TOOLS, messages: afterBoth }).text, 'The tool said: contents');
});

test('nextTurn: question and silent-tool shorthands, plain text, titles, failures', () => {
  const question = nextTurn({ tools: TOOLS, messages: [user('[[llm question text="Pick?" options="a,b" multiple]]')] }).toolCall;
  assert.deepEqual(question, {
    name: 'question',
    arguments: { questions: [{ question: 'Pick?', header: 'Pick', options: [{ label: 'a', description: 'Answer a' }, { label: 'b', description: 'Answer b' }], multiple: true }] },
  });
  assert.deepEqual(nextTurn({ tools: TOOLS, messages: [user('[[llm silent-tool]]')] }).toolCall, { name: 'bash', arguments: { command: 'sleep 600' } });
  assert.equal(nextTurn({ tools: TOOLS, messages: [user('hi [[llm marker=M7]]')] }).text, 'Scripted answer M7.');
  assert.equal(nextTurn({ messages: [user('[[llm tool=bash command=x]] [[llm marker=T]]')] }).text, 'Scripted title T', 'no tools: a title request');
  assert.equal(nextTurn({ tools: TOOLS, messages: [user('[[llm status=400]]')] }).status, 400);
});

// The `data:` payloads of an SSE body, `[DONE]` included as a string.
function sseData(body) {
  return body.split('\n\n').filter(Boolean).map((block) => {
    const data = block.replace(/^data: /, '');
    return data === '[DONE]' ? data : JSON.parse(data);
  });
}

test('streams tool-call deltas, finish_reason and usage in OpenAI order; serves /v1/models', async (t) => {
  const llm = await startScriptedLlm();
  t.after(() => llm.close());
  const post = (body) => fetch(`${llm.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  const models = await (await fetch(`${llm.url}/models`)).json();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL_ID]);

  const res = await post({ model: MODEL_ID, stream: true, tools: TOOLS, messages: [user('[[llm tool=bash command="echo hi"]]')] });
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const chunks = sseData(await res.text());
  assert.equal(chunks.at(-1), '[DONE]');
  const usage = chunks.at(-2);
  assert.deepEqual(usage.choices, []);
  assert.deepEqual(usage.usage, { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 });
  const deltas = chunks.slice(0, -2).map((c) => c.choices[0]);
  assert.equal(deltas[0].delta.role, 'assistant');
  assert.equal(deltas.at(-1).finish_reason, 'tool_calls');
  const calls = deltas.flatMap((d) => d.delta.tool_calls ?? []);
  assert.equal(calls[0].function.name, 'bash');
  assert.match(calls[0].id, /^call_/);
  assert.deepEqual(JSON.parse(calls.map((c) => c.function.arguments).join('')), { command: 'echo hi' });

  const text = sseData(await (await post({ stream: true, tools: TOOLS, messages: [user('hello')] })).text());
  assert.equal(text.slice(0, -2).map((c) => c.choices[0].delta.content ?? '').join(''), 'Scripted answer plain.');
  assert.equal(text.at(-3).choices[0].finish_reason, 'stop');

  const plain = await (await post({ tools: TOOLS, messages: [user('hello')] })).json();
  assert.equal(plain.choices[0].message.content, 'Scripted answer plain.');

  const failed = await post({ stream: true, tools: TOOLS, messages: [user('[[llm status=503]]')] });
  assert.equal(failed.status, 503);
  assert.equal(llm.requests.length, 5);
});
