// Starts the real OpenCode server (`opencode serve`, installed by install.sh) offline on loopback:
// a temp HOME and XDG dirs, a generated opencode.json whose only provider is the scripted LLM, an
// environment that turns off every fetch opencode would make, and a git repo as its directory.
// Stops it (its process group, which it leads) and removes the temp dirs.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const OPENCODE_VERSION = '1.18.33';
export const OPENCODE_BIN = join(HERE, 'node_modules', 'opencode-linux-x64', 'bin', 'opencode');
export const PROVIDER_ID = 'scripted';
export const MODEL_ID = 'scripted-1';

// What keeps opencode from reaching the network (each checked in the 1.18.33 binary; FINDINGS.md
// has the details). The environment is built from scratch, so no proxy, API key or
// OTEL_EXPORTER_OTLP_ENDPOINT (opencode's only telemetry) leaks in from the caller's.
export const OFFLINE_ENV = {
  OPENCODE_DISABLE_AUTOUPDATE: '1',
  OPENCODE_DISABLE_MODELS_FETCH: '1',
  OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
  OPENCODE_PURE: '1',
  OPENCODE_DISABLE_SHARE: '1',
  OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
  OPENCODE_DISABLE_CLAUDE_CODE: '1',
  OPENCODE_DISABLE_EXTERNAL_SKILLS: '1',
};

// The opencode.json: the scripted LLM as an `@ai-sdk/openai-compatible` provider (bundled in the
// binary, so nothing is installed at run time) and the only one enabled; its model is also the
// small model, which writes session titles.
export function opencodeConfig({ llmUrl, permission, extra = {} }) {
  return {
    $schema: 'https://opencode.ai/config.json',
    autoupdate: false,
    share: 'disabled',
    enabled_providers: [PROVIDER_ID],
    provider: {
      [PROVIDER_ID]: {
        npm: '@ai-sdk/openai-compatible',
        name: 'Scripted LLM',
        options: { baseURL: llmUrl, apiKey: 'unused' },
        // A price, so that the cost opencode computes from the streamed usage is not 0.
        models: { [MODEL_ID]: { name: 'Scripted 1', tool_call: true, cost: { input: 1.5, output: 6 }, limit: { context: 100000, output: 4096 } } },
      },
    },
    model: `${PROVIDER_ID}/${MODEL_ID}`,
    small_model: `${PROVIDER_ID}/${MODEL_ID}`,
    ...(permission ? { permission } : {}),
    ...extra,
  };
}

// opencode installs @opencode-ai/plugin from npm into every config dir in the background unless
// the dir has a node_modules and a package-lock.json that already lists it (its Npm.install
// check); this makes that check pass for a dir without installing anything.
function seedConfigDir(dir) {
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  const lock = { name: 'opencode', lockfileVersion: 3, packages: { '': { dependencies: { '@opencode-ai/plugin': OPENCODE_VERSION } } } };
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock, null, 2));
}

// A git repo with one commit, like the project a real server runs in.
export function makeGitRepo(dir) {
  mkdirSync(dir, { recursive: true });
  const git = (...args) => execFileSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@localhost', '-c', 'init.defaultBranch=main', ...args], { cwd: dir, stdio: 'ignore' });
  git('init', '-q');
  writeFileSync(join(dir, 'README.md'), '# e2e project\n');
  git('add', '.');
  git('commit', '-q', '-m', 'initial');
  return dir;
}

// Process groups of the servers still running: killed if this process exits without stopping
// them (an uncaught error, process.exit), since a detached group outlives its parent.
const running = new Set();
process.on('exit', () => {
  for (const pgid of running) {
    try { process.kill(-pgid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

// The pids of every live descendant of `root` (from ps), deepest last; [] when ps fails.
function descendants(root) {
  if (root === undefined) return [];
  let table;
  try {
    table = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' });
  } catch {
    return [];
  }
  const children = new Map();
  for (const line of table.split('\n')) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number);
    if (!pid) continue;
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(pid);
  }
  const out = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length > 0) {
    const pid = queue.shift();
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

async function waitHealthy(url, proc, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`opencode exited (${proc.exitCode}) before it was healthy`);
    try {
      const res = await fetch(`${url}/global/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok && (await res.json()).healthy === true) return;
    } catch { /* not listening yet */ }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`opencode at ${url} not healthy within ${deadlineMs} ms`);
}

function waitListening(child, output, deadlineMs) {
  return new Promise((resolve, reject) => {
    const pattern = /opencode server listening on (http:\/\/\S+)/;
    const timer = setTimeout(() => finish(new Error(`no "listening" line within ${deadlineMs} ms`)), deadlineMs);
    const check = () => { const m = output.text.match(pattern); if (m) finish(null, m[1]); };
    const onExit = (code) => finish(new Error(`opencode exited (${code}) before listening`));
    const onError = (e) => finish(new Error(`opencode could not be started: ${e.message}`));
    function finish(error, url) {
      clearTimeout(timer);
      child.stdout.off('data', check);
      child.stderr.off('data', check);
      child.off('exit', onExit);
      child.off('error', onError);
      if (error) reject(new Error(`${error.message}\n${output.text.slice(-4000)}`));
      else resolve(url);
    }
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.once('exit', onExit);
    child.once('error', onError);
    check();
  });
}

// Starts `opencode serve` on 127.0.0.1 and a port of its choosing, healthy when this resolves.
// `permission` is opencode's permission config (e.g. { bash: 'ask' }); `configExtra` is merged
// into opencode.json; `wrap` (e.g. ['strace', '-f', ...]) is prefixed to the command line.
// stop() ends its process group and removes the temp dirs (unless `keep`).
export async function startOpencode({ llmUrl, permission, configExtra, env = {}, wrap = [], keep = false, logLevel = 'INFO', startMs = 60_000 } = {}) {
  if (!existsSync(OPENCODE_BIN)) throw new Error(`${OPENCODE_BIN} is missing: run tests/e2e/install.sh`);
  const root = mkdtempSync(join(tmpdir(), 'agentd-e2e-'));
  const dirs = Object.fromEntries(['home', 'config', 'data', 'cache', 'state'].map((d) => [d, join(root, d)]));
  let directory;
  try {
    Object.values(dirs).forEach((d) => mkdirSync(d, { recursive: true }));
    const configDir = join(dirs.config, 'opencode');
    seedConfigDir(configDir);
    writeFileSync(join(configDir, 'opencode.json'), JSON.stringify(opencodeConfig({ llmUrl, permission, extra: configExtra }), null, 2));
    directory = makeGitRepo(join(root, 'project'));
  } catch (e) {
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
  const childEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    TMPDIR: root,
    HOME: dirs.home,
    XDG_CONFIG_HOME: dirs.config,
    XDG_DATA_HOME: dirs.data,
    XDG_CACHE_HOME: dirs.cache,
    XDG_STATE_HOME: dirs.state,
    ...OFFLINE_ENV,
    ...env,
  };
  const argv = [...wrap, OPENCODE_BIN, 'serve', '--hostname', '127.0.0.1', '--port', '0', '--print-logs', '--log-level', logLevel];
  const child = spawn(argv[0], argv.slice(1), { cwd: directory, env: childEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { text: '' };
  const keepOutput = (chunk) => { output.text = (output.text + chunk).slice(-200_000); };
  child.stdout.setEncoding('utf8').on('data', keepOutput);
  child.stderr.setEncoding('utf8').on('data', keepOutput);
  running.add(child.pid);
  // 'error' without 'exit' when it could not be started at all (e.g. a missing `wrap` program).
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal));
    child.once('error', (e) => resolve(e.code));
  });
  const stop = async () => {
    // Its tools' processes (a bash step's `sleep 600`) each run in a session of their own, so
    // the group kill below misses them: they are found (before opencode's exit reparents them)
    // and killed by pid.
    const tools = descendants(child.pid);
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
      const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
      await exited;
      clearTimeout(timer);
    }
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* none left */ }
    for (const pid of tools) {
      try { process.kill(-pid, 'SIGKILL'); } catch { /* not a group leader, or gone */ }
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    running.delete(child.pid);
    if (!keep) rmSync(root, { recursive: true, force: true });
  };
  try {
    const url = await waitListening(child, output, startMs);
    await waitHealthy(url, child, startMs);
    return { url, pid: child.pid, root, directory, dirs, logs: () => output.text, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
