// Starts what the MCP client tests talk to: the fake OpenCode upstream and a real agentd on
// loopback port 0 with a fresh state dir (binaries from $FAKE_OPENCODE and $AGENTD, set by
// CMake), reads their ports from their "listening on" lines, and stops both by PID.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (ctest sets it to the built binary)`);
  return value;
}

// A child whose stderr is kept (and always drained, so it never blocks on a full pipe).
function launch(path, args) {
  const child = spawn(path, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const proc = { child, stderr: '', exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal))) };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text) => { proc.stderr += text; });
  return proc;
}

// The first capture group of the first stderr line matching `pattern`.
function waitForLine(proc, pattern, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = proc.stderr.match(pattern);
      if (!match) return false;
      cleanup();
      resolve(match[1]);
      return true;
    };
    const onExit = () => { cleanup(); reject(new Error(`exited before printing ${pattern}:\n${proc.stderr}`)); };
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${proc.stderr}`)); }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      proc.child.stderr.off('data', check);
      proc.child.off('exit', onExit);
    };
    proc.child.stderr.on('data', check);
    proc.child.once('exit', onExit);
    check();
  });
}

// SIGTERM, then SIGKILL if it has not exited in time; the exit code (or signal name).
async function stop(proc, graceMs = 15_000) {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return proc.exited;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  const status = await proc.exited;
  clearTimeout(timer);
  return status;
}

// auth: 'token' (the default; the test reads $STATE_DIR/token) or 'none' (loopback only).
export async function startStack({ auth = 'token' } = {}) {
  const fake = launch(required('FAKE_OPENCODE'), ['--listen', '127.0.0.1:0']);
  let agentd;
  const stateDir = mkdtempSync(join(tmpdir(), 'agentd-mcp-'));
  try {
    const upstream = await waitForLine(fake, /fake_opencode listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const args = ['--listen', '127.0.0.1:0', '--state-dir', stateDir, '--upstream-url', upstream];
    if (auth === 'none') args.push('--auth', 'none');
    agentd = launch(required('AGENTD'), args);
    const url = await waitForLine(agentd, /agentd listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const token = auth === 'none' ? undefined : readFileSync(join(stateDir, 'token'), 'utf8').trim();
    return {
      mcpUrl: `${url}/mcp`,
      upstreamUrl: upstream,
      token,
      agentdStderr: () => agentd.stderr,
      // Stops both; resolves to agentd's exit status (0 after a clean SIGTERM shutdown).
      async stop() {
        const status = await stop(agentd);
        await stop(fake);
        rmSync(stateDir, { recursive: true, force: true });
        return status;
      },
    };
  } catch (error) {
    if (agentd) await stop(agentd);
    await stop(fake);
    rmSync(stateDir, { recursive: true, force: true });
    throw error;
  }
}
