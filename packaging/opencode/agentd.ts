// OpenCode plugin: the six agentd tools (agents_start, _status, _wait, _cancel, _peek, _respond)
// forwarding to agentd's JSON-RPC endpoint, with the OpenCode session id as `session` (so a
// sub-agent's own calls nest under its job, DESIGN §2) and as `upstream_parent` (sub-sessions show
// as its children). Results go to the model as compact JSON. A job the model does not wait for is
// announced in its session when it finishes. Install: copy to .opencode/plugin/.
//
// agentd is found like agentctl finds it: $AGENTD_URL (default http://127.0.0.1:7077) and
// $AGENTD_TOKEN, else the token file in agentd's state dir ($AGENTD_STATE_DIR, $STATE_DIRECTORY,
// an absolute $XDG_STATE_HOME/agentd, ~/.local/state/agentd), else the system service's
// /var/lib/agentd/token (group agentd may read it). Only erasable TypeScript is used,
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

// The system service's token, readable by the members of group agentd.
const systemToken = "/var/lib/agentd/token"

function readToken(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8").trim() || undefined
  } catch {
    return undefined // no token file: agentd may run with --auth none
  }
}

// Read on every call: agentd writes the token on its first start, possibly after OpenCode's.
function token(env: Env): string | undefined {
  if (env.AGENTD_TOKEN) return env.AGENTD_TOKEN
  const dir = stateDir(env)
  const own = dir ? readToken(join(dir, "token")) : undefined
  // As agentctl: a state dir named by $AGENTD_STATE_DIR is the only place asked.
  if (own || env.AGENTD_STATE_DIR) return own
  return readToken(systemToken)
}

// One JSON-RPC call; the result object, or a thrown Error that OpenCode shows as the tool's
// failure.
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
  return reply.result
}

// Drops options the model left out, so agentd's defaults apply.
function defined(obj: Record<string, unknown>) {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined))
}

type JobView = {
  id: string
  state: string
  description?: string
  output?: string
  error?: { kind?: string; message?: string }
}

const terminal = new Set(["completed", "failed", "cancelled", "interrupted", "not_found"])
const noticeLines = 5
const noticeChars = 600
const watchTimeoutMs = 60_000
const watchFailures = 3

// The first lines of a finished job's output or error, for the notice in the parent session.
function notice(job: JobView): string {
  const label = job.description ? ` (${job.description})` : ""
  const body = job.state === "completed"
    ? (job.output ?? "")
    : `${job.error?.kind ?? "error"}: ${job.error?.message ?? ""}`
  let head = body.split("\n").slice(0, noticeLines).join("\n")
  if (head.length > noticeChars) head = head.slice(0, noticeChars)
  const more = head.length < body.length ? "\n…" : ""
  return `[agentd] Background job ${job.id}${label} finished: ${job.state}.\n${head}${more}\n` +
    `Use agents_peek or agents_status with job ${job.id} for the rest.`
}

type Post = (session: string, text: string) => Promise<unknown>

// Jobs this plugin started whose result the model has not seen yet, per OpenCode session. One
// loop per session long-polls agents_wait (mode any) on those the model is not itself waiting
// for, and posts a notice into the session when one finishes; it ends when none is left.
class Watcher {
  private readonly open = new Map<string, Set<string>>()
  private readonly held = new Map<string, number>()
  private readonly loops = new Set<string>()

  private readonly env: Env
  private readonly post: Post

  // Plain fields, not parameter properties: those are not erasable TypeScript.
  constructor(env: Env, post: Post) {
    this.env = env
    this.post = post
  }

  track(session: string, jobs: JobView[]) {
    const ids = this.open.get(session) ?? new Set<string>()
    for (const job of jobs) if (!terminal.has(job.state)) ids.add(job.id)
    this.open.set(session, ids)
    this.kick(session)
  }

  // The model received these views: a terminal one needs no notice.
  seen(session: string, jobs: JobView[]) {
    const ids = this.open.get(session)
    for (const job of jobs) if (terminal.has(job.state)) ids?.delete(job.id)
  }

  // Marks jobs the model is waiting on (all open ones of the session when ids is absent); the
  // returned function releases them and lets the loop watch them again.
  hold(session: string, ids?: string[]): () => void {
    const covered = ids ?? [...(this.open.get(session) ?? [])]
    for (const id of covered) this.held.set(id, (this.held.get(id) ?? 0) + 1)
    return () => {
      for (const id of covered) {
        const n = (this.held.get(id) ?? 1) - 1
        if (n > 0) this.held.set(id, n)
        else this.held.delete(id)
      }
      this.kick(session)
    }
  }

  private unheld(session: string): string[] {
    return [...(this.open.get(session) ?? [])].filter((id) => !this.held.has(id))
  }

  private kick(session: string) {
    if (this.loops.has(session) || this.unheld(session).length === 0) return
    this.loops.add(session)
    void this.loop(session).finally(() => {
      this.loops.delete(session)
      if ((this.open.get(session)?.size ?? 0) === 0) this.open.delete(session)
    })
  }

  private async loop(session: string) {
    let failures = 0
    for (let ids = this.unheld(session); ids.length > 0; ids = this.unheld(session)) {
      let result: { jobs: JobView[] }
      try {
        const params = { session, jobs: ids, mode: "any", timeout_ms: watchTimeoutMs, on_input: "ignore" }
        result = await call(this.env, "agents_wait", params)
        failures = 0
      } catch {
        // agentd gone: stop after a few tries; the next tool call starts watching again.
        if (++failures >= watchFailures) return
        continue
      }
      for (const job of result.jobs) await this.finished(session, job)
    }
  }

  private async finished(session: string, job: JobView) {
    const open = this.open.get(session)
    if (!terminal.has(job.state) || !open?.has(job.id) || this.held.has(job.id)) return
    open.delete(job.id)
    if (job.state === "not_found") return
    try {
      await this.post(session, notice(job))
    } catch {
      // OpenCode could not be reached (its SDK client resolves a refusal, such as a 404 for a
      // session it does not know, without throwing); the job stays readable through agents_status.
    }
  }
}

const upstreamSession = /^ses[A-Za-z0-9_-]+$/

export const AgentdPlugin: Plugin = async (input) => {
  const env: Env = process.env
  const watcher = new Watcher(env, (id, text) =>
    input.client.session.prompt({
      path: { id },
      body: { noReply: true, parts: [{ type: "text", text }] },
    }))
  const s = tool.schema
  const jobId = s.string().min(1).max(256)
  const jobIds = s.array(jobId).max(1024).optional()
  const compact = (result: unknown) => JSON.stringify(result)
  return {
    tool: {
      agents_start: tool({
        description:
          "Start sub-agent jobs on agentd, one per task, running concurrently. Returns at once " +
          "with the job ids (state queued or running); use agents_wait to collect the outputs. " +
          "A job you do not wait for is announced in this session when it finishes.",
        args: {
          tasks: s
            .array(
              s.object({
                prompt: s.string().min(1).describe("what the sub-agent should do"),
                description: s.string().optional().describe("short label shown in status"),
                agent: s.string().min(1).optional().describe("upstream agent (e.g. build, plan)"),
                model: s.string().regex(/^[^/]+\/.+$/).optional().describe("provider/model"),
                system: s.string().optional().describe("extra system prompt"),
                directory: s.string().min(1).optional(),
                timeout_ms: s.number().int().positive().optional(),
                permissions: s.enum(["ask", "allow", "deny"]).optional()
                  .describe("the sub-agent's permission requests: ask (you answer), allow, deny"),
                budget: s.object({
                  max_cost: s.number().min(0).optional(),
                  max_tokens: s.number().int().min(1).optional(),
                }).strict().optional().describe("past either bound the job fails (kind limit)"),
                continue: jobId.optional()
                  .describe("a finished job id whose upstream session this task continues"),
                isolation: s.enum(["worktree"]).optional()
                  .describe("worktree: run in a fresh git worktree of the directory (kept after)"),
              }).strict(),
            )
            .min(1)
            .describe("the jobs to start"),
        },
        async execute(args, context) {
          const tasks = args.tasks.map((t) => defined(t))
          const session = context.sessionID
          const parent = upstreamSession.test(session) ? session : undefined
          const params = defined({ session, tasks, upstream_parent: parent })
          const result = await call(env, "agents_start", params, context.abort)
          watcher.track(session, result.jobs)
          return compact(result)
        },
      }),
      agents_status: tool({
        description: "State of this session's agentd jobs (all of them, or the given ids).",
        args: { jobs: jobIds.describe("job ids; default: every job of this session") },
        async execute(args, context) {
          const params = defined({ session: context.sessionID, jobs: args.jobs })
          const result = await call(env, "agents_status", params, context.abort)
          watcher.seen(context.sessionID, result.jobs)
          return compact(result)
        },
      }),
      agents_wait: tool({
        description:
          "Wait until all (or, with mode any, one) of this session's agentd jobs finish; " +
          "returns their outputs and errors, and timed_out when the wait ran out first. A job " +
          "waiting for an answer ends the wait early (needs_input): answer with agents_respond.",
        args: {
          jobs: jobIds.describe("job ids; default: the session's unfinished jobs"),
          mode: s.enum(["all", "any"]).optional(),
          timeout_ms: s.number().int().min(0).max(3_600_000).optional(),
          on_input: s.enum(["return", "ignore"]).optional(),
        },
        async execute(args, context) {
          const session = context.sessionID
          const release = watcher.hold(session, args.jobs)
          try {
            const result = await call(env, "agents_wait", defined({ session, ...args }), context.abort)
            watcher.seen(session, result.jobs)
            return compact(result)
          } finally {
            release()
          }
        },
      }),
      agents_cancel: tool({
        description: "Cancel agentd jobs: queued ones at once, running ones are aborted.",
        args: { jobs: s.array(jobId).min(1).max(1024).describe("job ids to cancel") },
        async execute(args, context) {
          const params = { session: context.sessionID, jobs: args.jobs }
          return compact(await call(env, "agents_cancel", params, context.abort))
        },
      }),
      agents_peek: tool({
        description:
          "The text a job's sub-agent has produced so far, with the job's view; with diff, " +
          "also the files it changed (changes: file, status, additions, deletions, patch).",
        args: {
          job: jobId.describe("the job id"),
          diff: s.boolean().optional().describe("also return the job's file changes"),
        },
        async execute(args, context) {
          const params = defined({ session: context.sessionID, job: args.job, diff: args.diff })
          return compact(await call(env, "agents_peek", params, context.abort))
        },
      }),
      agents_respond: tool({
        description:
          "Answer a waiting job's pending request (its requests[].id): a permission with " +
          "decision allow, allow_always or deny (message: the reason); a question with answers " +
          "(one array of option labels per question) or decision deny. Then agents_wait again.",
        args: {
          job: jobId.describe("the job id"),
          request: s.string().min(1).max(256).describe("the pending request's id"),
          decision: s.enum(["allow", "allow_always", "deny"]).optional(),
          message: s.string().max(4096).optional().describe("with deny on a permission: the reason"),
          answers: s.array(s.array(s.string().min(1).max(4096)).max(64)).min(1).max(64).optional()
            .describe("a question's answers, one array per question"),
        },
        async execute(args, context) {
          const params = defined({ session: context.sessionID, ...args })
          return compact(await call(env, "agents_respond", params, context.abort))
        },
      }),
    },
  }
}
