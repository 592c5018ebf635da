// The dashboard (/ui) in headless Debian chromium driven by playwright-core: the fake OpenCode
// upstream and a real agentd on loopback port 0 (binaries from $FAKE_OPENCODE and $AGENTD, set by
// CMake). Jobs are started over HTTP /rpc; the page must show them live, open one's output, cancel
// a long one through its button, and it saves a screenshot to $UI_ARTIFACTS/dashboard.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const WAIT_MS = 10_000;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (ctest sets it)`);
  return value;
}

// A child whose stderr is kept (and always drained, so it never blocks on a full pipe).
function launch(path, args) {
  const child = spawn(path, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  const proc = { child, stderr: '', exited };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text) => { proc.stderr += text; });
  return proc;
}

// The first capture group of `pattern` in the process's stderr, once it appears.
function waitForLine(proc, pattern) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no ${pattern} within ${WAIT_MS} ms:\n${proc.stderr}`)), WAIT_MS);
    const check = () => {
      const match = proc.stderr.match(pattern);
      if (match) done(null, match[1]);
    };
    const onExit = () => done(new Error(`exited before printing ${pattern}:\n${proc.stderr}`));
    function done(err, value) {
      clearTimeout(timer);
      proc.child.stderr.off('data', check);
      proc.child.off('exit', onExit);
      if (err) reject(err); else resolve(value);
    }
    proc.child.stderr.on('data', check);
    proc.child.once('exit', onExit);
    check();
  });
}

// SIGTERM by PID, SIGKILL if it has not exited in time; the exit code (or signal name).
async function stop(proc) {
  if (proc.child.exitCode === null && proc.child.signalCode === null) {
    proc.child.kill('SIGTERM');
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
    await proc.exited;
    clearTimeout(timer);
  }
  return proc.exited;
}

let fake, agentd, stateDir, baseUrl, token, browser, page;
const problems = []; // page errors, CSP violations, requests to other origins
let framesSent = 0; // by the page over its WebSockets
let nextId = 1;

async function rpc(method, params) {
  const res = await fetch(`${baseUrl}/rpc`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.ok(body.result, JSON.stringify(body));
  return body.result;
}

async function startJobs(session, tasks) {
  const result = await rpc('agents_start', { session, tasks });
  return result.jobs.map((j) => j.id);
}

// The fake echoes the prompt back in 60 deltas over 30 s (one every ~0.5 s); the test cancels
// such jobs long before they end.
function longPrompt(what) {
  const plan = 'Read the module and its tests first, list what each function does and who calls '
    + 'it, then propose a plan in small steps that each keep the build green, with the risks of '
    + 'every step and how to check it. ';
  return `${what}. ${plan.repeat(2)}Finally estimate the work. [[fake latency_ms=30000 chunks=60]]`;
}

const row = (id) => page.locator(`tr.job[data-id="${id}"]`);

async function rowState(id, state) {
  await row(id).and(page.locator(`[data-state="${state}"]`)).waitFor({ timeout: WAIT_MS });
}

before(async () => {
  fake = launch(required('FAKE_OPENCODE'), ['--listen', '127.0.0.1:0']);
  const upstream = await waitForLine(fake, /fake_opencode listening on (http:\/\/127\.0\.0\.1:\d+)/);
  stateDir = mkdtempSync(join(tmpdir(), 'agentd-ui-'));
  agentd = launch(required('AGENTD'), ['--listen', '127.0.0.1:0', '--state-dir', stateDir,
    '--upstream-url', upstream, '--max-running', '4']);
  baseUrl = await waitForLine(agentd, /agentd listening on (http:\/\/127\.0\.0\.1:\d+)/);
  token = readFileSync(join(stateDir, 'token'), 'utf8').trim();
  browser = await chromium.launch({
    executablePath: required('CHROMIUM'),
    headless: true,
    args: ['--no-sandbox'], // tests may run as root, where Chromium's sandbox refuses to start
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 640 } });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('request', (req) => {
    if (!req.url().startsWith(baseUrl) && !req.url().startsWith(baseUrl.replace('http', 'ws')))
      problems.push(`request to ${req.url()}`);
  });
  page.on('dialog', (dialog) => dialog.accept());
  page.on('websocket', (ws) => ws.on('framesent', () => { framesSent += 1; }));
});

after(async () => {
  await browser?.close();
  const status = agentd && await stop(agentd);
  if (fake) await stop(fake);
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  // A clean shutdown; under ASan a leak or an error report would make this non-zero.
  if (agentd) assert.equal(status, 0, agentd.stderr);
});

test('the token moves from the fragment to sessionStorage and /ws goes live', async () => {
  await page.goto(`${baseUrl}/ui#token=${token}`);
  await page.locator('#connection[data-status="live"]').waitFor({ timeout: WAIT_MS });
  assert.equal(page.url(), `${baseUrl}/ui`, 'the token left the address bar');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('agentd.token')), token);
  // A reload has no fragment: the token comes from sessionStorage.
  await page.reload();
  await page.locator('#connection[data-status="live"]').waitFor({ timeout: WAIT_MS });
});

test('started jobs appear grouped by session and turn completed', async () => {
  const ids = await startJobs('review', [
    { prompt: 'Summarise README.md [[fake latency_ms=300]]', description: 'summarise README' },
    { prompt: 'List the TODO comments [[fake latency_ms=600]]', description: 'list TODOs' },
    { prompt: 'Check licence headers [[fake latency_ms=900]]', description: 'check licences' },
  ]);
  for (const id of ids) await row(id).waitFor({ timeout: WAIT_MS });
  await page.locator('tr.session[data-session="review"]').waitFor();
  for (const id of ids) await rowState(id, 'completed');
  assert.equal(await page.locator('#counts li[data-state="completed"] .n').textContent(), '3');
  const first = row(ids[0]);
  assert.equal(await first.locator('td.desc').textContent(), 'summarise README');
  assert.match(await first.locator('td.upstream').textContent(), /\S/, 'upstream session shown');
  assert.match(await first.locator('td.elapsed').textContent(), /\d+\.\d s/);

  // Opening one shows its final output.
  await first.click();
  await page.locator('#detail-state[data-state="completed"]').waitFor();
  assert.equal(await page.locator('#output').textContent(), 'echo: Summarise README.md');
});

test('a failed job shows its error kind, phase and message', async () => {
  const [id] = await startJobs('review', [
    { prompt: 'Run the linter [[fake fault=500]]', description: 'run linter' },
  ]);
  await rowState(id, 'failed');
  await row(id).click();
  const error = page.locator('#detail-error');
  await error.waitFor();
  assert.match(await error.textContent(), /^upstream · prompt · 500: /);
});

test('a running job shows live output, and its cancel button cancels it', async () => {
  const prompt = longPrompt('Refactor the request parser into small functions');
  const [id] = await startJobs('refactor', [{ prompt, description: 'refactor parser' }]);
  await rowState(id, 'running');
  await row(id).click();
  await page.locator('#output-label', { hasText: 'live' }).waitFor();
  // The partial output grows while it runs (agents_peek on a timer while selected).
  await page.waitForFunction(() => document.querySelector('#output').textContent.startsWith('echo: Refac'),
    null, { timeout: WAIT_MS });
  const before = (await page.locator('#output').textContent()).length;
  await page.waitForFunction((n) => document.querySelector('#output').textContent.length > n,
    before, { timeout: WAIT_MS });
  // The elapsed time ticks on the client.
  const t0 = await row(id).locator('td.elapsed').textContent();
  await page.waitForFunction(([sel, t]) => document.querySelector(sel).textContent !== t,
    [`tr.job[data-id="${id}"] td.elapsed`, t0], { timeout: WAIT_MS });

  await page.locator('#cancel').click(); // the confirm() is accepted by the dialog handler
  await rowState(id, 'cancelled');
  await page.locator('#detail-state[data-state="cancelled"]').waitFor();
  assert.match(await page.locator('#detail-error').textContent(), /^cancelled: cancelled by the caller/);
  assert.equal(await page.locator('#cancel').isHidden(), true);
});

test('with no job open the page only listens: no polling', async () => {
  await page.locator('#close').click();
  await page.locator('#detail').waitFor({ state: 'hidden' });
  const sent = framesSent;
  const ids = await startJobs('docs', [
    { prompt: 'Fix typos in docs/ [[fake latency_ms=300]]', description: 'fix typos' },
    { prompt: 'Update the changelog [[fake latency_ms=600]]', description: 'update changelog' },
  ]);
  for (const id of ids) await rowState(id, 'completed'); // every change arrived as a push
  assert.equal(framesSent, sent, 'the page sent nothing while the jobs ran');
});

test('the filter box narrows the rows', async () => {
  await page.locator('#filter').fill('refactor');
  await page.locator('tr.session[data-session="review"]').waitFor({ state: 'detached' });
  assert.equal(await page.locator('tr.job').count(), 1);
  await page.locator('#filter').fill('');
  await page.locator('tr.session[data-session="review"]').waitFor();
});

test('screenshot with jobs in every live state', async () => {
  // Four slots (--max-running 4): four of these run, the fifth waits in the queue.
  const ids = await startJobs('plan', [
    { prompt: longPrompt('Plan the storage migration'), description: 'plan storage migration' },
    { prompt: longPrompt('Audit the error handling'), description: 'audit error handling' },
    { prompt: longPrompt('Draft the release notes'), description: 'draft release notes' },
    { prompt: longPrompt('Review open issues'), description: 'review open issues' },
    { prompt: longPrompt('Benchmark the parser'), description: 'benchmark parser' },
  ]);
  await rowState(ids[0], 'running');
  await rowState(ids[4], 'queued');
  await row(ids[0]).click();
  await page.waitForFunction(() => document.querySelector('#output').textContent.length > 60,
    null, { timeout: WAIT_MS });
  await row(ids[0]).locator('td.upstream', { hasText: 'ses_' }).waitFor(); // from the peek
  const dir = required('UI_ARTIFACTS');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, 'dashboard.png') });
  await rpc('agents_cancel', { session: 'plan', jobs: ids });
  for (const id of ids) await rowState(id, 'cancelled');
});

test('nothing broke the CSP or left the origin', () => {
  assert.deepEqual(problems, []);
});
