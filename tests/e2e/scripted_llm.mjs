// A scripted OpenAI-compatible LLM for the end-to-end tests against the real OpenCode server:
// `POST /v1/chat/completions` (streamed SSE or plain JSON) and `GET /v1/models` on loopback. What
// it answers is decided by `[[llm ...]]` cues in the conversation's last user message:
//   [[llm tool=NAME key="value" n=5 ...]]   call tool NAME with the other keys as its arguments
//                                       (several such cues: one call per turn, in order)
//   [[llm question text="..." header="..." options="a,b" multiple]]   opencode's question tool
//   [[llm silent-tool]]                 bash `sleep 600`: a step that prints nothing
//   [[llm marker=M delay_ms=N status=S]]   echo M in the answer; N ms between SSE chunks; answer
//                                       HTTP S with an OpenAI error body instead
// `node scripted_llm.mjs [--port N] [--log FILE]` serves it alone and prints its URL.
import { createServer } from 'node:http';
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export const MODEL_ID = 'scripted-1';

// Every assistant turn streams this usage, so tests can check tokens end to end.
const USAGE = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };

// `[[llm tool=bash command="echo hi" timeout=5000]]` → { tool: 'bash', command: 'echo hi',
// timeout: 5000 }. A double-quoted value is a string (\" and \\ escape); a bare number, true or
// false is that JSON value, another bare word a string; a key without a value is `true`.
function bareValue(word) {
  if (/^-?\d+(\.\d+)?$/.test(word)) return Number(word);
  if (word === 'true' || word === 'false') return word === 'true';
  return word;
}

export function parseCue(body) {
  const cue = {};
  const token = /\s*([A-Za-z_][\w-]*)(?:=(?:"((?:[^"\\]|\\.)*)"|(\S+)))?/y;
  let rest = body.trim();
  while (rest.length > 0) {
    token.lastIndex = 0;
    const m = token.exec(rest);
    if (!m) throw new Error(`bad [[llm]] cue near: ${rest}`);
    cue[m[1]] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3] !== undefined ? bareValue(m[3]) : true;
    rest = rest.slice(token.lastIndex).trimStart();
  }
  return cue;
}

// The cues of one text, in order (a quoted value may contain `]]`).
export function cues(text) {
  return [...text.matchAll(/\[\[llm((?:"(?:[^"\\]|\\.)*"|[^\]"]|\](?!\]))*)\]\]/g)].map((m) => parseCue(m[1]));
}

function textOf(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (p.type === 'text' ? p.text : '')).join('');
  return '';
}

// The tool call one cue asks for: the cue's keys other than `tool` are the tool's arguments.
// `question` and `silent-tool` are shorthands for opencode's question tool and a bash step that
// prints nothing for ten minutes.
function toolCallOf(cue) {
  if (cue['silent-tool']) {
    return { name: 'bash', arguments: { command: 'sleep 600' } };
  }
  if (cue.question) {
    const labels = String(cue.options ?? 'yes,no').split(',');
    const question = {
      question: cue.text ?? 'Which one?',
      header: cue.header ?? 'Pick',
      options: labels.map((label) => ({ label, description: `Answer ${label}` })),
    };
    if (cue.multiple) question.multiple = true;
    return { name: 'question', arguments: { questions: [question] } };
  }
  const { tool, ...args } = cue;
  return { name: tool, arguments: args };
}

// What the next assistant turn is: the n-th tool cue of the last user message, where n counts the
// assistant tool calls since that message; once they are used up, text that quotes the last tool
// result (or echoes the prompt's `marker`). A request without tools (opencode's title and summary
// agents) always gets plain text, so those never run a tool.
export function nextTurn(request) {
  const messages = request.messages ?? [];
  let lastUser = -1;
  messages.forEach((m, i) => { if (m.role === 'user') lastUser = i; });
  const prompt = lastUser >= 0 ? textOf(messages[lastUser].content) : '';
  const all = cues(prompt);
  const options = Object.assign({}, ...all.filter((c) => !c.tool && !c.question && !c['silent-tool']));
  const toolCues = all.filter((c) => c.tool || c.question || c['silent-tool']);
  const after = messages.slice(lastUser + 1);
  const callsSoFar = after.filter((m) => m.role === 'assistant' && m.tool_calls?.length).length;
  const hasTools = Array.isArray(request.tools) && request.tools.length > 0;
  const delayMs = Number(options.delay_ms ?? 0);
  if (!hasTools) return { text: `Scripted title ${options.marker ?? ''}`.trim(), delayMs: 0 };
  if (options.status) return { status: Number(options.status), delayMs };
  if (callsSoFar < toolCues.length) return { toolCall: toolCallOf(toolCues[callsSoFar]), delayMs };
  const toolResults = after.filter((m) => m.role === 'tool');
  if (toolResults.length > 0) {
    const output = textOf(toolResults[toolResults.length - 1].content).trim();
    return { text: `The tool said: ${output}`, delayMs };
  }
  return { text: `Scripted answer ${options.marker ?? 'plain'}.`, delayMs };
}

function chunk(id, delta, finishReason = null) {
  return {
    id,
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model: MODEL_ID,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  };
}

// The SSE chunks of one turn, in OpenAI's order: role, content or tool-call deltas (a tool call's
// arguments split in two, as real providers stream them), finish_reason, then usage alone.
function streamChunks(turn, id) {
  const out = [chunk(id, { role: 'assistant', content: '' })];
  if (turn.toolCall) {
    const args = JSON.stringify(turn.toolCall.arguments);
    const half = Math.floor(args.length / 2);
    const callId = `call_${id.slice(-12)}`;
    out.push(chunk(id, { tool_calls: [{ index: 0, id: callId, type: 'function', function: { name: turn.toolCall.name, arguments: '' } }] }));
    out.push(chunk(id, { tool_calls: [{ index: 0, function: { arguments: args.slice(0, half) } }] }));
    out.push(chunk(id, { tool_calls: [{ index: 0, function: { arguments: args.slice(half) } }] }));
    out.push(chunk(id, {}, 'tool_calls'));
  } else {
    for (const word of turn.text.match(/\S+\s*/g) ?? ['']) out.push(chunk(id, { content: word }));
    out.push(chunk(id, {}, 'stop'));
  }
  out.push({ ...chunk(id, {}), choices: [], usage: USAGE });
  return out;
}

function completion(turn, id) {
  const message = { role: 'assistant', content: turn.text ?? null };
  if (turn.toolCall) {
    message.tool_calls = [{ id: `call_${id.slice(-12)}`, type: 'function', function: { name: turn.toolCall.name, arguments: JSON.stringify(turn.toolCall.arguments) } }];
  }
  return {
    id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: MODEL_ID,
    choices: [{ index: 0, message, finish_reason: turn.toolCall ? 'tool_calls' : 'stop' }],
    usage: USAGE,
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function answerCompletion(request, res) {
  const turn = nextTurn(request);
  if (turn.status) {
    return sendJson(res, turn.status, { error: { message: `scripted failure ${turn.status}`, type: 'invalid_request_error', code: null } });
  }
  const id = `chatcmpl-${Date.now().toString(16)}${Math.random().toString(16).slice(2, 10)}`;
  if (!request.stream) return sendJson(res, 200, completion(turn, id));
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const c of streamChunks(turn, id)) {
    if (res.destroyed) return;
    res.write(`data: ${JSON.stringify(c)}\n\n`);
    if (turn.delayMs > 0) await sleep(turn.delayMs);
  }
  res.end('data: [DONE]\n\n');
}

// Serves on 127.0.0.1 (port 0 = a free one). Every request (method, path, headers, body) is kept
// in `requests` and, given `log` (a file path), appended to it as a JSON line, so a test or probe
// can check what opencode sent to its provider.
export function startScriptedLlm({ port = 0, log } = {}) {
  const requests = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (part) => { raw += part; });
    req.on('end', () => {
      let body = null;
      try { body = raw ? JSON.parse(raw) : null; } catch { return sendJson(res, 400, { error: { message: 'body is not JSON' } }); }
      const entry = { method: req.method, path: req.url, headers: req.headers, body };
      requests.push(entry);
      if (log) appendFileSync(log, `${JSON.stringify(entry)}\n`);
      if (req.method === 'GET' && req.url === '/v1/models') {
        return sendJson(res, 200, { object: 'list', data: [{ id: MODEL_ID, object: 'model', created: 0, owned_by: 'agentd-tests' }] });
      }
      if (req.method === 'POST' && req.url === '/v1/chat/completions') {
        answerCompletion(body ?? {}, res).catch((e) => res.destroy(e));
        return;
      }
      sendJson(res, 404, { error: { message: `no route ${req.method} ${req.url}` } });
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}/v1`;
      const close = () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); });
      resolve({ url, requests, close });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
  const llm = await startScriptedLlm({ port: Number(opt('--port') ?? 0), log: opt('--log') });
  console.log(`scripted-llm listening on ${llm.url}`);
  process.on('SIGTERM', () => llm.close().then(() => process.exit(0)));
}
