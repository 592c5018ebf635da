// packaging/mcp/opencode.json read by the real OpenCode CLI (1.18.33, installed by
// tests/e2e/install.sh): `opencode mcp list` in a project holding the snippet (URL pointed at a
// real agentd on port 0), with HOME and the XDG dirs in a temp dir whose
// ~/.local/state/agentd/token is the daemon's token, must show agentd connected; with a wrong
// token it must say it needs authentication. Offline: tests/e2e's OFFLINE_ENV turns off every
// fetch opencode would make. A plain script (exit 77, ctest: skipped, when opencode is not
// installed), like tests/e2e's.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { OFFLINE_ENV, OPENCODE_BIN, OPENCODE_VERSION } from '../e2e/opencode_server.mjs';
import { startStack } from '../mcp/harness.mjs';
import { loadSnippet, retarget } from './snippets.mjs';

if (!existsSync(OPENCODE_BIN)) {
  console.log(`SKIP: ${OPENCODE_BIN} is not installed (tests/e2e/install.sh could not reach the npm registry)`);
  process.exit(77);
}

// A temp HOME with XDG dirs, the token file and a project holding the snippet for `mcpUrl`.
function userDirs(root, mcpUrl, token) {
  const dirs = Object.fromEntries(['config', 'data', 'cache', 'state', 'project'].map((d) => [d, join(root, d)]));
  const stateDir = join(root, '.local', 'state', 'agentd');
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(join(stateDir, 'token'), `${token}\n`, { mode: 0o600 });
  // As tests/e2e/opencode_server.mjs does: a config dir whose package-lock already lists
  // @opencode-ai/plugin, so that opencode installs nothing from npm into it.
  const configDir = join(dirs.config, 'opencode');
  mkdirSync(join(configDir, 'node_modules'), { recursive: true });
  writeFileSync(join(configDir, 'package-lock.json'), JSON.stringify({
    name: 'opencode', lockfileVersion: 3,
    packages: { '': { dependencies: { '@opencode-ai/plugin': OPENCODE_VERSION } } },
  }));
  const config = loadSnippet('opencode.json');
  config.mcp.agentd.url = retarget(config.mcp.agentd.url, mcpUrl);
  mkdirSync(dirs.project);
  writeFileSync(join(dirs.project, 'opencode.json'), JSON.stringify(config, null, 2));
  return dirs;
}

// `opencode mcp list` in the project; its output without colours.
async function mcpList(root, dirs) {
  const { stdout, stderr } = await promisify(execFile)(OPENCODE_BIN, ['mcp', 'list'], {
    cwd: dirs.project,
    timeout: 60_000,
    env: {
      PATH: process.env.PATH, HOME: root, XDG_CONFIG_HOME: dirs.config, XDG_DATA_HOME: dirs.data,
      XDG_CACHE_HOME: dirs.cache, XDG_STATE_HOME: dirs.state, ...OFFLINE_ENV,
    },
  });
  return (stdout + stderr).replaceAll(/\x1b\[[0-9;]*m/g, '');
}

test('opencode mcp list shows agentd connected with the packaged snippet', { timeout: 120_000 }, async (t) => {
  const stack = await startStack();
  const roots = [];
  t.after(async () => {
    const status = await stack.stop();
    for (const root of roots) rmSync(root, { recursive: true, force: true });
    assert.equal(status, 0, `agentd did not shut down cleanly:\n${stack.agentdStderr()}`);
  });
  const user = (token) => {
    const root = mkdtempSync(join(tmpdir(), 'agentd-opencode-mcp-'));
    roots.push(root);
    return [root, userDirs(root, stack.mcpUrl, token)];
  };

  const listed = await mcpList(...user(stack.token));
  assert.match(listed, /✓ agentd connected/, listed);
  assert.ok(listed.includes(stack.mcpUrl), listed);

  // agentd answers 401 to the wrong token; opencode takes that for a server wanting OAuth.
  const refused = await mcpList(...user('0'.repeat(stack.token.length)));
  assert.match(refused, /agentd needs authentication/, refused);
  assert.doesNotMatch(refused, /agentd connected/, refused);
});
