// The official MCP conformance suite (@modelcontextprotocol/conformance, every server scenario)
// against a real agentd. The suite's client sends no bearer token, so this agentd runs with
// `--auth none` on loopback; it needs Node >= 22: the test Node (tests/node) that runs this file.
// expected-failures.yml lists the scenarios for features agentd does not offer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { startStack } from './harness.mjs';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (text) => { output += text; });
    child.stderr.on('data', (text) => { output += text; });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

test('agentd passes the MCP conformance suite apart from features it does not offer', async () => {
  const stack = await startStack({ auth: 'none' });
  let suite;
  try {
    suite = await run(process.execPath, [
      here('./node_modules/@modelcontextprotocol/conformance/dist/index.js'),
      'server', '--url', stack.mcpUrl, '--suite', 'all',
      '--expected-failures', here('./expected-failures.yml'),
    ]);
  } finally {
    const status = await stack.stop();
    assert.equal(status, 0, `agentd did not shut down cleanly:\n${stack.agentdStderr()}`);
  }
  const summary = suite.output.slice(suite.output.indexOf('=== SUMMARY ==='));
  console.log(summary);
  assert.equal(suite.code, 0, suite.output);
});
