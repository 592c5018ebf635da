// packaging/mcp/claude-desktop.json run as Claude Desktop runs it: its command, args and env
// spawned as a stdio MCP server (`npx -y mcp-remote` resolved to the mcp-remote pinned here, the
// URL pointed at a real agentd on port 0), driven by the official SDK's stdio client through
// agents_start and agents_wait. mcp-remote keeps its state in a temp HOME, which must hold no
// OAuth client or tokens afterwards: the bearer header is all the auth it needs. With a wrong
// token it does start OAuth (and fails, agentd has none), which shows the check can see it.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { startStack } from '../mcp/harness.mjs';
import { PASTE_MARK, loadSnippet, mcpRemoteArgs, retarget } from './snippets.mjs';

const MCP_REMOTE = join(dirname(fileURLToPath(import.meta.url)), 'node_modules', '.bin', 'mcp-remote');
// mcp-remote's own messages once it goes for OAuth (its 0.15.1 dist/ source).
const OAUTH_STARTED = /Initializing auth coordination|OAuth callback server|Authentication required|requires authorization|To authorize this client/;

let stack;
const homes = [];
before(async () => { stack = await startStack(); });
after(async () => {
  const status = await stack?.stop();
  for (const home of homes) rmSync(home, { recursive: true, force: true });
  assert.equal(status, 0, `agentd did not shut down cleanly:\n${stack?.agentdStderr()}`);
});

// The snippet's server as Claude Desktop starts it, `token` pasted in; mcp-remote's stderr is
// kept in `log.text`.
function bridge(token) {
  const home = mkdtempSync(join(tmpdir(), 'agentd-claude-desktop-'));
  homes.push(home);
  const server = loadSnippet('claude-desktop.json').mcpServers.agentd;
  assert.equal(server.command, 'npx');
  const { url } = mcpRemoteArgs(server.args);
  const args = server.args.slice(2).map((arg) => (arg === url ? retarget(url, stack.mcpUrl) : arg));
  const env = Object.fromEntries(Object.entries(server.env).map(([k, v]) => [k, v.replaceAll(PASTE_MARK, token)]));
  const transport = new StdioClientTransport({
    command: MCP_REMOTE,
    args,
    env: { PATH: process.env.PATH, HOME: home, MCP_REMOTE_CONFIG_DIR: join(home, '.mcp-auth'), ...env },
    stderr: 'pipe',
  });
  const log = { text: '' };
  transport.stderr.setEncoding('utf8').on('data', (text) => { log.text += text; });
  const client = new Client({ name: 'claude-desktop-standin', version: '1.0.0' });
  return { home, transport, client, log };
}

// Every file under `dir`, relative paths.
function filesUnder(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath ?? entry.path, entry.name).slice(dir.length + 1));
}

async function call(client, name, args) {
  const result = await client.callTool({ name, arguments: args });
  assert.equal(result.isError, false, JSON.stringify(result.content));
  return result.structuredContent;
}

test('Claude Desktop reaches agentd through mcp-remote with the bearer header', { timeout: 90_000 }, async (t) => {
  const { home, transport, client, log } = bridge(stack.token);
  t.after(() => client.close());
  await client.connect(transport);

  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((tool) => tool.name).sort(),
    ['agents_cancel', 'agents_peek', 'agents_respond', 'agents_start', 'agents_status', 'agents_wait']);
  const started = await call(client, 'agents_start', { tasks: [{ prompt: 'via mcp-remote [[fake latency_ms=50]]' }] });
  const waited = await call(client, 'agents_wait', { jobs: [started.jobs[0].id], timeout_ms: 20_000 });
  assert.equal(waited.jobs[0].state, 'completed');
  assert.equal(waited.jobs[0].output, 'echo: via mcp-remote');

  assert.match(log.text, /Connected to remote server using StreamableHTTPClientTransport/, log.text);
  assert.doesNotMatch(log.text, OAUTH_STARTED, log.text);
  const stored = filesUnder(home).filter((file) => /tokens|client_info|code_verifier/.test(file));
  assert.deepEqual(stored, [], `mcp-remote stored OAuth state:\n${log.text}`);
});

test('with a wrong token mcp-remote goes for OAuth and the connection fails', { timeout: 90_000 }, async (t) => {
  const { transport, client, log } = bridge('0'.repeat(stack.token.length));
  t.after(() => client.close());
  await assert.rejects(client.connect(transport));
  assert.match(log.text, OAUTH_STARTED, log.text);
});
