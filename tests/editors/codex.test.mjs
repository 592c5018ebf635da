// packaging/mcp/codex.config.toml read by the real Codex CLI (@openai/codex pinned here, its
// linux-x64 binary shipped in the npm package): CODEX_HOME is a temp dir holding the snippet as
// config.toml, and `codex mcp list` / `codex mcp get agentd` (table and --json) must show agentd
// as a streamable HTTP server with the URL and the token's env var. Offline, no login: listing
// reads only the config. A config with the token inline is refused, which is why the snippet
// names an env var.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { DEFAULT_URL, SNIPPET_DIR } from './snippets.mjs';

const CODEX = join(dirname(fileURLToPath(import.meta.url)), 'node_modules', '.bin', 'codex');
let home;

before(() => {
  home = mkdtempSync(join(tmpdir(), 'agentd-codex-'));
  copyFileSync(join(SNIPPET_DIR, 'codex.config.toml'), join(home, 'config.toml'));
});
after(() => rmSync(home, { recursive: true, force: true }));

// codex with `args` in CODEX_HOME=`codexHome`; its stdout, or the error with its stderr.
async function codex(args, codexHome = home) {
  const { stdout } = await promisify(execFile)(CODEX, args, {
    env: { PATH: process.env.PATH, HOME: codexHome, CODEX_HOME: codexHome },
    timeout: 30_000,
  });
  return stdout;
}

const EXPECTED_TRANSPORT = { type: 'streamable_http', url: DEFAULT_URL, bearer_token_env_var: 'AGENTD_TOKEN' };

test('codex --version is the pinned 0.169.0', async () => {
  assert.match(await codex(['--version']), /^codex-cli 0\.169\.0$/m);
});

test('codex mcp list shows agentd with its URL and token env var', async () => {
  const table = await codex(['mcp', 'list']);
  assert.match(table, /^agentd\s+http:\/\/127\.0\.0\.1:7077\/mcp\s+AGENTD_TOKEN\s+enabled\s+Bearer token\s*$/m, table);
  const listed = JSON.parse(await codex(['mcp', 'list', '--json']));
  assert.equal(listed.length, 1);
  assert.equal(listed[0].name, 'agentd');
  assert.equal(listed[0].enabled, true);
  assert.equal(listed[0].auth_status, 'bearer_token');
  const { type, url, bearer_token_env_var } = listed[0].transport;
  assert.deepEqual({ type, url, bearer_token_env_var }, EXPECTED_TRANSPORT);
});

test('codex mcp get agentd shows the same server', async () => {
  const text = await codex(['mcp', 'get', 'agentd']);
  assert.match(text, /transport: streamable_http/);
  assert.match(text, /url: http:\/\/127\.0\.0\.1:7077\/mcp/);
  assert.match(text, /bearer_token_env_var: AGENTD_TOKEN/);
  const got = JSON.parse(await codex(['mcp', 'get', 'agentd', '--json']));
  assert.equal(got.name, 'agentd');
  assert.equal(got.transport.url, DEFAULT_URL);
  assert.equal(got.transport.bearer_token_env_var, 'AGENTD_TOKEN');
});

test('codex refuses a token written inline, and an unknown server', async () => {
  const inline = mkdtempSync(join(tmpdir(), 'agentd-codex-inline-'));
  try {
    writeFileSync(join(inline, 'config.toml'), `[mcp_servers.agentd]\nurl = "${DEFAULT_URL}"\nbearer_token = "secret"\n`);
    await assert.rejects(codex(['mcp', 'list'], inline), (e) => /bearer_token/.test(e.stderr), 'inline bearer_token');
  } finally {
    rmSync(inline, { recursive: true, force: true });
  }
  await assert.rejects(codex(['mcp', 'get', 'not-agentd']), (e) => e.code !== 0);
});
