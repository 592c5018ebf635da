// The dashboard (/ui) in headless Debian chromium driven by playwright-core: the fake OpenCode
// upstream and a real agentd on loopback port 0 (binaries from $FAKE_OPENCODE and $AGENTD, set by
// CMake). Jobs are started over HTTP /rpc; the page must show them live, open one's output, cancel
// a long one through its button, answer a sub-agent's permission and question requests through
// the detail pane (issue #16), show how a job ended instead of an empty output box, total the
// usage in the header, fit an 800 px window (issue #17), and it saves screenshots to $UI_ARTIFACTS (dashboard.png,
// ui-permission.png). With UI_DOCS_SCREENSHOT=<file.png> (tests/ui/screenshot.sh sets it to
// docs/ui-permission.png) the permission screenshot is also written there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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
  // A failed test may leave a job waiting for an answer: cancel what still runs, so agentd's
  // drain (up to its 10 s grace) ends at once.
  if (baseUrl && token) {
    try {
      const { jobs } = await rpc('agents_status', { session: 'tests' });
      const live = jobs.filter((j) => ['queued', 'running', 'waiting'].includes(j.state));
      if (live.length) await rpc('agents_cancel', { session: 'tests', jobs: live.map((j) => j.id) });
    } catch {
      // agentd is gone already: its exit status below tells.
    }
  }
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

let failedId; // a job that failed with HTTP 500, for the narrow-window test

test('a job that did not complete shows how it ended instead of an empty output box', async () => {
  const ids = await startJobs('review', [
    { prompt: 'Run the linter [[fake fault=500]]', description: 'run linter' },
    { prompt: 'Wait for the lock [[fake fault=hang]]', description: 'wait for lock', timeout_ms: 300 },
    { prompt: 'Count the words [[fake usage_steps=6 step_tokens=100 step_ms=50]]',
      description: 'count words', budget: { max_tokens: 250 } },
  ]);
  [failedId] = ids;
  const { jobs } = await rpc('agents_wait', { session: 'review', jobs: ids, timeout_ms: 10_000 });
  const expected = [
    ['upstream', 'Failed: the upstream reported an error', 'kind upstream · phase prompt · HTTP 500'],
    ['timeout', 'Timed out', 'kind timeout · phase prompt'],
    ['limit', 'Stopped: over its limit', 'kind limit'],
  ];
  for (const [i, [kind, title, facts]] of expected.entries()) {
    const job = jobs[i];
    assert.equal(job.state, 'failed', JSON.stringify(job));
    assert.equal(job.error.kind, kind, JSON.stringify(job));
    await rowState(job.id, 'failed');
    await row(job.id).click();
    const error = page.locator(`#detail-error[data-kind="${kind}"]`);
    await error.waitFor({ timeout: WAIT_MS });
    assert.equal(await error.locator('.error-title').textContent(), title);
    assert.match(await error.locator('.error-facts').textContent(), new RegExp('^' + facts));
    assert.equal(await error.locator('.error-message').textContent(), job.error.message);
    assert.ok(await error.locator('.error-message').isVisible(), 'the message is on screen');
    assert.ok(await page.locator('#output').isHidden(), 'no empty output box');
    assert.ok(await page.locator('#output-label').isHidden());
  }
  assert.match(jobs[2].error.message, /^budget exhausted: tokens/);
  // A completed job has its output box back and no error.
  const done = await page.locator('tr.job[data-state="completed"]').first().getAttribute('data-id');
  await row(done).click();
  await page.locator('#output').waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.ok(await page.locator('#detail-error').isHidden());
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
  assert.equal(await page.locator('#detail-error .error-title').textContent(), 'Cancelled');
  assert.match(await page.locator('#detail-error .error-message').textContent(),
    /^cancelled by the caller/);
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

// --- issue #17: usage totals, prompt previews, narrow windows --------------------------------

test('the header totals the usage of the listed jobs, kept current, the cost a plain decimal', async () => {
  const prompts = ['Tally the first ledger [[fake latency_ms=200]]', 'Tally the second ledger',
    'Tally <img src=x onerror=alert(1)> too'];
  const ids = await startJobs('usage', prompts.map((prompt) => ({ prompt })));
  for (const id of ids) await rowState(id, 'completed');
  // Three jobs of 0.0012 each: the float sum is 0.0036000000000000003, shown as 0.0036.
  const { usage: mine } = await rpc('agents_status', { session: 'usage' });
  assert.ok(Math.abs(mine.cost - 0.0036) < 1e-12, JSON.stringify(mine));
  const sessionUsage = page.locator('tr.session[data-session="usage"] .session-usage');
  assert.equal(await sessionUsage.textContent(),
    `${mine.input_tokens} in / ${mine.output_tokens} out tokens · cost 0.0036`);

  // The header: every listed job, the same sum agents_status gives for their ids.
  const shown = await page.locator('tr.job').evaluateAll((rows) => rows.map((r) => r.dataset.id));
  const { jobs, usage } = await rpc('agents_status', { session: 'usage', jobs: shown });
  assert.ok(jobs.every((j) => !['queued', 'running', 'waiting'].includes(j.state)), 'all settled');
  const tokens = `${usage.input_tokens} in / ${usage.output_tokens} out tokens`;
  await page.waitForFunction((t) => document.querySelector('#usage .tokens').textContent === t,
    tokens, { timeout: WAIT_MS });
  const cost = await page.locator('#usage .cost').textContent();
  assert.match(cost, /^\d+(\.\d{1,10})?$/, 'a plain decimal');
  assert.ok(Math.abs(Number(cost) - usage.cost) < 1e-9, `${cost} vs ${usage.cost}`);

  // Jobs without a description are listed and titled by their prompt preview, as text.
  for (const [i, id] of ids.entries()) {
    assert.equal(await row(id).locator('td.desc.preview').textContent(), prompts[i]);
  }
  assert.equal(await page.locator('#rows img').count(), 0, 'no markup');
  await row(ids[1]).click();
  await page.locator('#detail-title', { hasText: prompts[1] }).waitFor({ timeout: WAIT_MS });
  await page.locator('#close').click();
});

// Everything of the page that must stay reachable, as rectangles, and the job table's columns.
function layout() {
  return page.evaluate(() => {
    const box = (node) => {
      const r = node.getBoundingClientRect();
      return { left: r.left, right: r.right, width: r.width };
    };
    const visible = (node) => node.getClientRects().length > 0;
    const list = document.querySelector('.list');
    return {
      window: window.innerWidth,
      page: document.documentElement.scrollWidth,
      header: [...document.querySelectorAll('header > *')].filter(visible).map(box),
      list: box(list),
      listScrolls: list.scrollWidth > list.clientWidth,
      columns: [...document.querySelectorAll('#jobs th')].filter(visible).map(box),
      detail: box(document.querySelector('#detail')),
      error: box(document.querySelector('#detail-error .error-message')),
    };
  });
}

test('at 800 px the header, the list and a failed job\'s pane fit the window', async () => {
  for (const width of [800, 1100]) {
    await page.setViewportSize({ width, height: 700 });
    await row(failedId).click();
    await page.locator('#detail-error .error-message').waitFor({ timeout: WAIT_MS });
    const l = await layout();
    const inside = (b, what, right = l.window) =>
      assert.ok(b.left >= 0 && b.right <= right + 0.5 && b.width > 0,
        `${what} at ${width} px: ${JSON.stringify(b)}`);
    assert.ok(l.page <= width, `no sideways scroll of the page at ${width} px`);
    l.header.forEach((b, i) => inside(b, `header item ${i}`));
    inside(l.list, 'the list');
    inside(l.detail, 'the detail pane');
    inside(l.error, 'the error message');
    assert.ok(l.columns.length >= 4, 'state, description, job and elapsed stay');
    // No column is cut off: each is inside the list (it does not even need to scroll).
    l.columns.forEach((b, i) => inside(b, `column ${i}`, l.list.right));
    assert.equal(l.listScrolls, false, `the table fits at ${width} px`);
  }
  await page.setViewportSize({ width: 1400, height: 640 });
  await page.locator('#close').click();
});

// --- issue #16: waiting jobs, their requests, steps and answers -------------------------------

const detailRequest = (kind) => page.locator(`#requests .request[data-kind="${kind}"]`);

// A computed style of the element `selector` finds now (rows and steps are rebuilt on events,
// so a locator's element may be detached by the time it is evaluated).
function styleOf(selector, property) {
  return page.evaluate(([sel, prop]) => {
    const node = document.querySelector(sel);
    return node ? getComputedStyle(node)[prop] : null;
  }, [selector, property]);
}

async function outputIs(text) {
  await page.waitForFunction((t) => document.querySelector('#output').textContent === t, text,
    { timeout: WAIT_MS });
}

test('a waiting job stands out, is counted in the header, and Allow once completes it', async () => {
  await page.locator('#detail').waitFor({ state: 'hidden' });
  assert.equal(await page.locator('#waiting').isHidden(), true, 'no waiting count while none waits');
  const [id] = await startJobs('tests', [{
    prompt: 'Install the dependencies, then run the test suite and the linter and report what '
      + 'fails [[fake tool=bash tool_title=npm_ci '
      + 'tool_output=added_212_packages_in_3s permission=bash patterns=npm_test|npm_run_lint]]',
    description: 'run the test suite',
  }]);
  await rowState(id, 'waiting');
  // The header counts it, the row has the waiting colour and tells what it waits for.
  await page.locator('#waiting:not([hidden])').waitFor({ timeout: WAIT_MS });
  assert.equal(await page.locator('#waiting .n').textContent(), '1');
  assert.equal(await page.locator('#counts li[data-state="waiting"] .n').textContent(), '1');
  assert.match(await page.title(), /^\(1 waiting\)/);
  await page.mouse.move(0, 0); // no hover tint
  const bg = await styleOf(`tr.job[data-id="${id}"] td.desc`, 'backgroundColor');
  assert.equal(bg, 'rgb(255, 241, 229)', 'the waiting tint');
  assert.match(await row(id).locator('td.desc .asks').textContent(), /permission: bash/);
  assert.match(await row(id).locator('td.desc .activity').textContent(), /^bash: /);

  // The header's count opens the job that waits.
  await page.locator('#waiting').click();
  await page.locator('#detail-state[data-state="waiting"]').waitFor({ timeout: WAIT_MS });
  const request = detailRequest('permission');
  await request.waitFor({ timeout: WAIT_MS });
  assert.equal(await request.locator('.permission-tool').textContent(), 'bash');
  assert.deepEqual(await request.locator('.patterns li').allTextContents(), ['npm test', 'npm run lint']);
  // Its earlier tool step is listed (from agents_peek), collapsed.
  const done = page.locator('#steps .step[data-status="completed"]');
  await done.first().waitFor({ timeout: WAIT_MS });
  assert.equal(await done.first().locator('.step-title').textContent(), 'npm ci');
  assert.equal(await done.first().locator('.tail').isVisible(), false, 'collapsed');

  // The screenshot for the README: the detail pane with the permission request.
  const dir = required('UI_ARTIFACTS');
  mkdirSync(dir, { recursive: true });
  const shot = join(dir, 'ui-permission.png');
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.mouse.move(0, 0);
  await page.screenshot({ path: shot });
  if (process.env.UI_DOCS_SCREENSHOT) {
    mkdirSync(dirname(process.env.UI_DOCS_SCREENSHOT), { recursive: true });
    copyFileSync(shot, process.env.UI_DOCS_SCREENSHOT);
  }

  // 800 px wide: nothing scrolls sideways and the buttons are on screen.
  await page.setViewportSize({ width: 800, height: 700 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 800), 'no sideways scroll');
  const box = await request.locator('button.deny').boundingBox();
  assert.ok(box && box.x + box.width <= 800, 'Deny is on screen');
  await page.setViewportSize({ width: 1400, height: 640 });

  await request.locator('button', { hasText: 'Allow once' }).click();
  await rowState(id, 'completed');
  await page.locator('#detail-state[data-state="completed"]').waitFor({ timeout: WAIT_MS });
  // The fake's text: its tool step's line, then the permitted call's (the same tool output).
  await outputIs('tool said: added 212 packages in 3s\npermission once: added 212 packages in 3s');
  assert.equal(await page.locator('#requests .request').count(), 0, 'the request is gone');
  await page.locator('#waiting').waitFor({ state: 'hidden', timeout: WAIT_MS });
  assert.equal(await page.title(), 'agentd');
  // Who answered what.
  const answer = page.locator('#answered li');
  await answer.first().waitFor({ timeout: WAIT_MS });
  assert.equal(await answer.count(), 1);
  assert.equal(await answer.locator('.answer-kind').textContent(), 'permission');
  assert.equal(await answer.locator('.answer-decision').textContent(), 'allowed once');
  assert.equal(await answer.locator('.answer-by').textContent(), 'by caller');
});

test('Deny sends the message to the sub-agent; hostile text stays text', async () => {
  const [id] = await startJobs('tests', [{
    prompt: 'Clean the build [[fake permission=bash patterns=%3Cimg_src=x_onerror=alert(1)%3E]]',
    description: '<b>clean</b> the build',
  }]);
  await rowState(id, 'waiting');
  await row(id).click();
  const request = detailRequest('permission');
  await request.waitFor({ timeout: WAIT_MS });
  assert.equal(await request.locator('.patterns li').textContent(), '<img src=x onerror=alert(1)>');
  assert.equal(await page.locator('#requests img, #rows b, #detail-title b').count(), 0, 'no markup');
  assert.equal(await row(id).locator('td.desc').evaluate((td) => td.firstChild.nodeValue),
    '<b>clean</b> the build');
  await request.locator('input.message').fill('not in this repository');
  await request.locator('button.deny').click();
  await rowState(id, 'completed');
  await page.locator('#detail-state[data-state="completed"]').waitFor({ timeout: WAIT_MS });
  await outputIs('permission rejected: not in this repository');
  assert.equal(await page.locator('#answered .answer-decision').textContent(), 'denied');
});

test('a question is answered by picking an option; an empty Submit is refused inline', async () => {
  const [id] = await startJobs('tests', [{
    prompt: 'Pick a theme [[fake question=red|green|blue question_text=Which_theme_colour? header=Theme]]',
    description: 'pick a theme',
  }]);
  await rowState(id, 'waiting');
  await row(id).click();
  const request = detailRequest('question');
  await request.waitFor({ timeout: WAIT_MS });
  assert.equal(await request.locator('legend').textContent(), 'Theme');
  assert.equal(await request.locator('.request-text').textContent(), 'Which theme colour?');
  assert.deepEqual(await request.locator('.option-label').allTextContents(), ['red', 'green', 'blue']);
  assert.equal(await request.locator('input.choice[type="radio"]').count(), 3);
  await request.locator('button.submit').click();
  assert.equal(await request.locator('.request-error').textContent(), 'Pick an option first.');
  await request.locator('label.option', { hasText: 'green' }).click();
  await request.locator('button.submit').click();
  await rowState(id, 'completed');
  await page.locator('#detail-state[data-state="completed"]').waitFor({ timeout: WAIT_MS });
  await outputIs('answered: green');
  assert.equal(await page.locator('#answered .answer-decision').textContent(), 'answered');
});

test('a multiple-choice question has checkboxes, and Dismiss rejects it', async () => {
  const [id] = await startJobs('tests', [{
    prompt: 'Choose the checks [[fake question=lint|unit|e2e multiple=1]]',
    description: 'choose the checks',
  }]);
  await rowState(id, 'waiting');
  await row(id).click();
  const request = detailRequest('question');
  await request.waitFor({ timeout: WAIT_MS });
  assert.equal(await request.locator('input.choice[type="checkbox"]').count(), 3);
  await request.locator('button.dismiss').click();
  await rowState(id, 'completed');
  await page.locator('#detail-state[data-state="completed"]').waitFor({ timeout: WAIT_MS });
  assert.equal(await page.locator('#answered .answer-decision').textContent(), 'dismissed');
});

test('a running job shows its current step in the row and its steps in the pane', async () => {
  // Two steps of 2.5 s: the first one's output tail is shown while the second runs.
  const [id] = await startJobs('tests', [{
    prompt: 'Run the unit tests [[fake tool=bash steps=2 tool_title=npm_test tool_output=42_passing '
      + 'tool_ms=2500]]',
    description: 'unit tests',
  }]);
  await rowState(id, 'running');
  await row(id).locator('td.desc .activity', { hasText: 'bash: npm test' })
    .waitFor({ timeout: WAIT_MS });
  await row(id).click();
  await page.locator(`tr.job.selected[data-id="${id}"]`).waitFor({ timeout: WAIT_MS });
  // This job's steps, not whatever the pane showed before the click took effect (CI once read
  // the previous test's question step here).
  const step = page.locator(`#steps[data-job="${id}"] .step`).first();
  await step.waitFor({ timeout: WAIT_MS });
  assert.equal(await step.locator('.step-tool').textContent(), 'bash');
  assert.equal(await step.locator('.step-title').textContent(), 'npm test');
  assert.match(await page.locator('#detail-facts .current-step').textContent(), /bash: npm test/);
  await page.locator('#steps .step[data-status="completed"]').waitFor({ timeout: WAIT_MS });
  assert.equal(await page.locator('#steps .step[data-status="running"]').count(), 1);
  // A step opens to its output tail, in monospace; it stays open while the list updates.
  await step.locator('summary').click();
  const tail = step.locator('.tail');
  await tail.waitFor({ timeout: WAIT_MS });
  assert.equal(await tail.textContent(), '42 passing');
  assert.match(await styleOf('#steps .step .tail', 'fontFamily'), /mono/i);
  assert.match(await step.locator('.step-time').textContent(), /\d+(\.\d)? s$/);
  await rowState(id, 'completed');
  assert.equal(await row(id).locator('td.desc .activity').count(), 0, 'no current step once done');
  assert.equal(await page.locator('#steps .step[data-status="completed"]').count(), 2);
  assert.equal(await page.locator('#steps details[open]').count(), 1, 'the open step stayed open');
  await page.locator('#close').click();
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

test('a job in a worktree shows its directory, branch and a coloured diff', async () => {
  const repo = mkdtempSync(join(tmpdir(), 'agentd-ui-repo-'));
  try {
    writeFileSync(join(repo, 'a.txt'), 'one\ntwo\n');
    const git = (...args) => execFileSync('git', ['-C', repo, ...args], { stdio: 'ignore' });
    git('init', '-q');
    git('add', 'a.txt');
    git('-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'init');
    const [id] = await startJobs('worktrees', [{
      prompt: 'Edit a.txt [[fake write=a.txt write_text=one|three|<b>four</b>]]',
      description: 'isolated edit', directory: repo, isolation: 'worktree',
    }]);
    await rowState(id, 'completed');
    await row(id).click();
    await page.locator('#detail-state[data-state="completed"]').waitFor();
    const [job] = (await rpc('agents_status', { session: 'worktrees', jobs: [id] })).jobs;
    assert.equal(await page.locator('#detail-facts .worktree-dir').textContent(), job.worktree.directory);
    assert.match(await page.locator('#detail-facts .worktree-branch').textContent(), /^opencode\//);
    assert.equal(await page.locator('#diff-summary').textContent(), '1 file +2 \u22121');

    await page.locator('#diff-load').click();
    const file = page.locator('#diff-files li.diff-file');
    await file.waitFor({ timeout: WAIT_MS });
    assert.equal(await file.locator('summary').textContent(), 'M +2 \u22121 a.txt');
    await file.locator('summary').click();
    const added = file.locator('.patch span.add');
    assert.deepEqual(await added.allTextContents(), ['+three\n', '+<b>four</b>\n']);
    assert.deepEqual(await file.locator('.patch span.del').allTextContents(), ['-two\n']);
    assert.equal(await file.locator('.patch b').count(), 0, 'patch text stays text');
    const font = await file.locator('.patch').evaluate((e) => getComputedStyle(e).fontFamily);
    assert.match(font, /mono/);
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
});

// --- issue #17: follow-ups ---------------------------------------------------------------------

test('a finished job takes a follow-up that opens in its place; only the latest of a chain', async () => {
  const [id] = await startJobs('follow', [
    { prompt: 'Write the parser [[fake latency_ms=200]]', description: 'write parser' },
  ]);
  await rowState(id, 'completed');
  await row(id).click();
  await page.locator('#detail-state[data-state="completed"]').waitFor({ timeout: WAIT_MS });
  await page.locator('#follow-up').waitFor({ timeout: WAIT_MS });
  await page.locator('#follow-up-send').click();
  assert.equal(await page.locator('#follow-up-error').textContent(), 'Write the next prompt first.');
  await page.locator('#follow-up-text').fill('Now add its tests');
  await page.locator('#follow-up-send').click();
  // The follow-up is selected at once and shows only its own turn once done.
  await outputIs('echo: Now add its tests');
  const next = await page.locator('#detail-facts dd.mono').first().textContent();
  assert.notEqual(next, id);
  const { jobs } = await rpc('agents_status', { session: 'follow', jobs: [next] });
  assert.equal(jobs[0].continues, id);
  await rowState(next, 'completed');
  await page.locator('#follow-up').waitFor({ timeout: WAIT_MS }); // the latest: continuable
  assert.equal(await page.locator('#follow-up-text').inputValue(), '', 'a fresh box');
  // The first job is continued already: no box there.
  await row(id).click();
  await page.locator('#follow-up').waitFor({ state: 'hidden', timeout: WAIT_MS });
  // A running job has none either.
  const [running] = await startJobs('follow', [{ prompt: longPrompt('Profile the build') }]);
  await rowState(running, 'running');
  await row(running).click();
  await page.locator('#detail-state[data-state="running"]').waitFor({ timeout: WAIT_MS });
  assert.equal(await page.locator('#follow-up').isHidden(), true);
  await rpc('agents_cancel', { session: 'follow', jobs: [running] });
  await rowState(running, 'cancelled');
  await page.locator('#close').click();
});

test('nothing broke the CSP or left the origin', () => {
  assert.deepEqual(problems, []);
});
