// The real agentd binary as the e2e suites run it: on 127.0.0.1:0 with a fresh state dir, its
// stderr tail kept, ready once it logs where it listens; stop() ends it (SIGTERM, SIGKILL after
// 15 s) and removes the state dir. Also pollUntil, the suites' one way of waiting for something.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// `check()` until it returns something truthy, every `everyMs`, for at most `timeoutMs`.
export async function pollUntil(check, what, timeoutMs, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// `binary` with `args` besides --listen and --state-dir (a temp dir named from `prefix`); `what`
// names it in a timeout. Resolves to { url, stateDir, stderr(), stop() }.
export async function spawnAgentd(binary, args, prefix, what) {
  const stateDir = mkdtempSync(join(tmpdir(), prefix));
  const child = spawn(binary, ['--listen', '127.0.0.1:0', '--state-dir', stateDir, ...args],
                      { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal));
    child.once('error', (e) => resolve(e.code));
  });
  child.stderr.setEncoding('utf8').on('data', (text) => { stderr = (stderr + text).slice(-100_000); });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(stateDir, { recursive: true, force: true });
  };
  try {
    const url = await pollUntil(() => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`agentd exited:\n${stderr}`);
      return stderr.match(/agentd listening on (http:\/\/127\.0\.0\.1:\d+)/)?.[1];
    }, what, 15_000, 20);
    return { url, stateDir, stderr: () => stderr, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
