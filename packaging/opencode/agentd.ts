// OpenCode plugin: agents_start, agents_status and agents_wait tools that forward to agentd's
// JSON-RPC endpoint, with the OpenCode session id as `session` (so a sub-agent's own calls nest
// under its job, DESIGN §2). Install: copy to .opencode/plugin/ or ~/.config/opencode/plugin/.
//
// agentd is found like agentctl finds it: $AGENTD_URL (default http://127.0.0.1:7077) and
// $AGENTD_TOKEN, else the token file in agentd's state dir ($AGENTD_STATE_DIR, $STATE_DIRECTORY,
// an absolute $XDG_STATE_HOME/agentd, ~/.local/state/agentd). Only erasable TypeScript is used,
// and the one export is the plugin (OpenCode calls every export as a plugin), so Node >= 22 can
// load this file as is (tests/plugin).
import { type Plugin, tool } from "@opencode-ai/plugin"
import { readFileSync } from "node:fs"
import { homedir } from "node:os"
import { isAbsolute, join } from "node:path"

type Env = Record<string, string | undefined>

function stateDir(env: Env): string | undefined {
  if (env.AGENTD_STATE_DIR) return env.AGENTD_STATE_DIR
  if (env.STATE_DIRECTORY) return env.STATE_DIRECTORY
  // A relative one is ignored, as the XDG spec says and as agentd does (common/state_dir.cpp).
  const xdg = env.XDG_STATE_HOME
  if (xdg && isAbsolute(xdg)) return join(xdg, "agentd")
  const home = env.HOME ?? homedir()
  return home ? join(home, ".local", "state", "agentd") : undefined
}

// Read on every call: agentd writes the token on its first start, possibly after OpenCode's.
function token(env: Env): string | undefined {
  if (env.AGENTD_TOKEN) return env.AGENTD_TOKEN
  const dir = stateDir(env)
  if (!dir) return undefined
  try {
    return readFileSync(join(dir, "token"), "utf8").trim()
  } catch {
    return undefined // no token file: agentd may run with --auth none
  }
}

// One JSON-RPC call; the result as pretty JSON (what the model reads), or a thrown Error that
// OpenCode shows as the tool's failure.
async function call(env: Env, method: string, params: object, signal?: AbortSignal) {
  const url = (env.AGENTD_URL ?? "http://127.0.0.1:7077").replace(/\/+$/, "") + "/rpc"
  const headers: Record<string, string> = { "Content-Type": "application/json" }
  const bearer = token(env)
  if (bearer) headers.Authorization = `Bearer ${bearer}`
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method, params })
  const res = await fetch(url, { method: "POST", headers, body, signal })
  if (!res.ok) throw new Error(`agentd ${url}: HTTP ${res.status} ${(await res.text()).trim()}`)
  const reply = await res.json()
  if (reply.error) {
    const data = reply.error.data ? ` ${JSON.stringify(reply.error.data)}` : ""
    throw new Error(`agentd error ${reply.error.code}: ${reply.error.message}${data}`)
  }
  return JSON.stringify(reply.result, null, 2)
}

// Drops options the model left out, so agentd's defaults apply.
function defined(obj: Record<string, unknown>) {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined))
}

export const AgentdPlugin: Plugin = async () => {
  const env: Env = process.env
  const s = tool.schema
  const jobIds = s.array(s.string()).optional()
  return {
    tool: {
      agents_start: tool({
        description:
          "Start sub-agent jobs on agentd, one per task, running concurrently. Returns at once " +
          "with the job ids (state queued or running); use agents_wait to collect the outputs.",
        args: {
          tasks: s
            .array(
              s.object({
                prompt: s.string().min(1).describe("what the sub-agent should do"),
                description: s.string().optional().describe("short label shown in status"),
                agent: s.string().optional(),
                model: s.string().optional().describe("provider/model"),
                system: s.string().optional(),
                directory: s.string().optional(),
                timeout_ms: s.number().int().positive().optional(),
              }),
            )
            .min(1)
            .describe("the jobs to start"),
        },
        async execute(args, context) {
          const tasks = args.tasks.map((t) => defined(t))
          return call(env, "agents_start", { session: context.sessionID, tasks }, context.abort)
        },
      }),
      agents_status: tool({
        description: "State of this session's agentd jobs (all of them, or the given ids).",
        args: { jobs: jobIds.describe("job ids; default: every job of this session") },
        async execute(args, context) {
          const params = defined({ session: context.sessionID, jobs: args.jobs })
          return call(env, "agents_status", params, context.abort)
        },
      }),
      agents_wait: tool({
        description:
          "Wait until all (or, with mode any, one) of this session's agentd jobs finish; " +
          "returns their outputs and errors, and timed_out when the wait ran out first.",
        args: {
          jobs: jobIds.describe("job ids; default: the session's unfinished jobs"),
          mode: s.enum(["all", "any"]).optional(),
          timeout_ms: s.number().int().min(0).max(3_600_000).optional(),
        },
        async execute(args, context) {
          const params = defined({ session: context.sessionID, ...args })
          return call(env, "agents_wait", params, context.abort)
        },
      }),
    },
  }
}
