// The MCP snippets of packaging/mcp/ as each client reads them: the file parsed (JSON or TOML),
// a check of its shape against the client's documentation (packaging/mcp/README.md cites each
// page), and the URL and headers the client would send once its placeholders are filled in.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';

export const SNIPPET_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'packaging', 'mcp');
export const DEFAULT_URL = 'http://127.0.0.1:7077/mcp';
// What the user pastes where a snippet cannot read the token itself (Zed, Claude Desktop).
export const PASTE_MARK = '<agentd-token>';

export function loadSnippet(file) {
  const text = readFileSync(join(SNIPPET_DIR, file), 'utf8');
  return file.endsWith('.toml') ? parseToml(text) : JSON.parse(text);
}

// Every `${...}`-style placeholder of `value` must be one `allowed` matches.
function placeholdersOnly(value, allowed, what) {
  for (const [found] of value.matchAll(/\$\{[^}]*\}/g))
    assert.match(found, allowed, `${what}: ${found} is not a placeholder this client expands`);
}

function stringMap(value, what) {
  assert.equal(typeof value, 'object', `${what} is an object`);
  for (const [key, v] of Object.entries(value)) assert.equal(typeof v, 'string', `${what}.${key} is a string`);
}

function remoteEntry(server, what) {
  assert.equal(server.url, DEFAULT_URL, `${what}.url`);
  stringMap(server.headers, `${what}.headers`);
  assert.equal(server.command, undefined, `${what} is remote, not a command`);
}

// resolve(context) gives { url, headers } with context = { token, env, home } as the user set up.
export const CLIENTS = {
  // https://code.visualstudio.com/docs/copilot/reference/mcp-configuration
  vscode: {
    file: 'vscode.mcp.json',
    check(config) {
      assert.deepEqual(Object.keys(config).sort(), ['inputs', 'servers']);
      const server = config.servers.agentd;
      assert.equal(server.type, 'http');
      remoteEntry(server, 'servers.agentd');
      const declared = new Map(config.inputs.map((input) => [input.id, input]));
      for (const input of config.inputs) {
        assert.equal(input.type, 'promptString');
        assert.equal(typeof input.description, 'string');
      }
      for (const value of Object.values(server.headers)) {
        placeholdersOnly(value, /^\$\{(input:[\w-]+|env:\w+|workspaceFolder)\}$/, 'vscode header');
        for (const [, id] of value.matchAll(/\$\{input:([\w-]+)\}/g)) {
          assert.ok(declared.has(id), `input ${id} is declared`);
          assert.equal(declared.get(id).password, true, `input ${id} is a password`);
        }
      }
    },
    resolve(config, { token }) {
      const server = config.servers.agentd;
      return { url: server.url, headers: mapValues(server.headers, (v) => v.replaceAll(/\$\{input:[\w-]+\}/g, token)) };
    },
  },
  // https://cursor.com/docs/context/mcp (config interpolation: ${env:NAME}, ${userHome})
  cursor: {
    file: 'cursor.mcp.json',
    check(config) {
      assert.deepEqual(Object.keys(config), ['mcpServers']);
      remoteEntry(config.mcpServers.agentd, 'mcpServers.agentd');
      for (const value of Object.values(config.mcpServers.agentd.headers))
        placeholdersOnly(value, /^\$\{(env:\w+|userHome|workspaceFolder)\}$/, 'cursor header');
    },
    resolve(config, { env, home }) {
      const server = config.mcpServers.agentd;
      const expand = (v) => v.replaceAll(/\$\{env:(\w+)\}/g, (_, name) => env[name] ?? '').replaceAll('${userHome}', home);
      return { url: server.url, headers: mapValues(server.headers, expand) };
    },
  },
  // https://zed.dev/docs/ai/mcp (custom servers: "url" and "headers"; no interpolation)
  zed: {
    file: 'zed.settings.json',
    check(config) {
      assert.deepEqual(Object.keys(config), ['context_servers']);
      remoteEntry(config.context_servers.agentd, 'context_servers.agentd');
      for (const value of Object.values(config.context_servers.agentd.headers))
        assert.doesNotMatch(value, /\$\{/, 'Zed expands no variables');
    },
    resolve(config, { pasted }) {
      const server = config.context_servers.agentd;
      return { url: server.url, headers: mapValues(server.headers, (v) => v.replaceAll(PASTE_MARK, pasted)) };
    },
  },
  // https://modelcontextprotocol.io/quickstart/user and https://github.com/geelen/mcp-remote#custom-headers
  'claude-desktop': {
    file: 'claude-desktop.json',
    check(config) {
      assert.deepEqual(Object.keys(config), ['mcpServers']);
      const server = config.mcpServers.agentd;
      assert.deepEqual(Object.keys(server).sort(), ['args', 'command', 'env'], 'Claude Desktop starts stdio servers only');
      assert.equal(server.command, 'npx');
      assert.ok(server.args.every((a) => typeof a === 'string' && !/\s/.test(a)), 'no spaces in args (mcp-remote README)');
      stringMap(server.env, 'env');
      for (const arg of server.args)
        for (const [, name] of arg.matchAll(/\$\{(\w+)\}/g)) assert.ok(name in server.env, `${name} is set in env`);
      mcpRemoteArgs(server.args);
    },
    resolve(config, { pasted }) {
      const server = config.mcpServers.agentd;
      const env = mapValues(server.env, (v) => v.replaceAll(PASTE_MARK, pasted));
      const { url, headers } = mcpRemoteArgs(server.args);
      return { url, headers: mapValues(headers, (v) => v.replaceAll(/\$\{(\w+)\}/g, (_, name) => env[name] ?? '')) };
    },
  },
  // https://developers.openai.com/codex/mcp (streamable HTTP: url, bearer_token_env_var)
  codex: {
    file: 'codex.config.toml',
    check(config) {
      assert.deepEqual(Object.keys(config), ['mcp_servers']);
      const server = config.mcp_servers.agentd;
      const known = ['url', 'bearer_token_env_var', 'http_headers', 'env_http_headers', 'enabled',
        'startup_timeout_sec', 'tool_timeout_sec', 'enabled_tools', 'disabled_tools'];
      for (const key of Object.keys(server)) assert.ok(known.includes(key), `mcp_servers.agentd.${key} is a streamable HTTP key`);
      assert.equal(server.url, DEFAULT_URL);
      assert.match(server.bearer_token_env_var, /^[A-Z_][A-Z0-9_]*$/);
    },
    resolve(config, { env }) {
      const server = config.mcp_servers.agentd;
      return { url: server.url, headers: { Authorization: `Bearer ${env[server.bearer_token_env_var] ?? ''}` } };
    },
  },
  // https://code.claude.com/docs/en/mcp (.mcp.json: ${VAR} and ${VAR:-default} expansion)
  'claude-code': {
    file: 'claude-code.mcp.json',
    check(config) {
      assert.equal(config.mcpServers.agentd.type, 'http');
      remoteEntry(config.mcpServers.agentd, 'mcpServers.agentd');
    },
    resolve(config, { env }) {
      const server = config.mcpServers.agentd;
      const expand = (v) => v.replaceAll(/\$\{(\w+)(?::-([^}]*))?\}/g, (_, name, fallback) => env[name] ?? fallback ?? '');
      return { url: server.url, headers: mapValues(server.headers, expand) };
    },
  },
  // https://opencode.ai/docs/mcp-servers/ and https://opencode.ai/docs/config/#variables
  opencode: {
    file: 'opencode.json',
    check(config) {
      const server = config.mcp.agentd;
      assert.equal(server.type, 'remote');
      assert.equal(server.enabled, true);
      remoteEntry(server, 'mcp.agentd');
    },
    resolve(config, { env, home, readFile }) {
      const server = config.mcp.agentd;
      const expand = (v) => v.replaceAll(/\{env:(\w+)\}/g, (_, name) => env[name] ?? '')
        .replaceAll(/\{file:([^}]+)\}/g, (_, path) => readFile(path.replace(/^~(?=\/)/, home)).trim());
      return { url: server.url, headers: mapValues(server.headers, expand) };
    },
  },
};

// mcp-remote's command line after `npx -y mcp-remote`: the URL, then `--header Name:value` pairs.
export function mcpRemoteArgs(args) {
  assert.deepEqual(args.slice(0, 2), ['-y', 'mcp-remote']);
  const [url, ...rest] = args.slice(2);
  assert.equal(url, DEFAULT_URL);
  const headers = {};
  for (let i = 0; i < rest.length; i += 2) {
    assert.equal(rest[i], '--header', `mcp-remote option ${rest[i]}`);
    const colon = rest[i + 1].indexOf(':');
    assert.ok(colon > 0, `${rest[i + 1]} is Name:value`);
    headers[rest[i + 1].slice(0, colon).trim()] = rest[i + 1].slice(colon + 1).trim();
  }
  return { url, headers };
}

function mapValues(object, f) {
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, f(v)]));
}

// `url` (the snippet's default) with the port and host of the test's agentd.
export function retarget(url, mcpUrl) {
  assert.equal(url, DEFAULT_URL);
  return mcpUrl;
}
