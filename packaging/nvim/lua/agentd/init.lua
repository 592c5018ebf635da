-- The plugin's settings (setup{url, token, session}), the calls every part shares, and the
-- `:Agentd start|jobs|cancel|status` subcommands. Expected failures (daemon down, 401, RPC
-- errors) become ERROR notifications, never Lua errors.
local rpc = require("agentd.rpc")

local M = {}

local options = {}

function M.setup(opts)
  options = vim.tbl_extend("force", {}, opts or {})
end

function M.url()
  if options.url then
    return options.url
  end
  local from_env = vim.env.AGENTD_URL
  if from_env and from_env ~= "" then
    return from_env
  end
  return "http://127.0.0.1:7077"
end

-- Each project's jobs are its own: the default session follows the working directory, so it is
-- worked out on every call. agentd takes [A-Za-z0-9._:-]{1,128}; anything else becomes `_`.
function M.session()
  if options.session then
    return options.session
  end
  local name = vim.fn.fnamemodify(vim.fn.getcwd(), ":t")
  if name == "" then
    name = "root"
  end
  return ("nvim-" .. name):gsub("[^%w._:-]", "_"):sub(1, 128)
end

function M.error(message)
  vim.notify(message, vim.log.levels.ERROR, { title = "agentd" })
end

-- Calls `method` in the session; `on_result(result)` runs only on success, failures are
-- notified, then passed to `opts.on_error(message)`. `opts.timeout_s` bounds the call;
-- `opts.wanted()` false drops its answer (a call the caller stopped, whose curl exit is no
-- failure). Returns the curl job id.
function M.call(method, params, on_result, opts)
  opts = opts or {}
  params = vim.tbl_extend("force", { session = M.session() }, params or {})
  local settings = { url = M.url(), token = options.token, timeout_s = opts.timeout_s }
  return rpc.call(settings, method, params, function(err, result)
    if opts.wanted and not opts.wanted() then
      return
    elseif err then
      M.error(err)
      if opts.on_error then
        opts.on_error(err)
      end
    elseif on_result then
      on_result(result)
    end
  end)
end

local function summary(jobs)
  local counts, order = {}, {}
  for _, job in ipairs(jobs) do
    if not counts[job.state] then
      counts[job.state] = 0
      table.insert(order, job.state)
    end
    counts[job.state] = counts[job.state] + 1
  end
  local parts = {}
  for _, state in ipairs(order) do
    table.insert(parts, string.format("%d %s", counts[state], state))
  end
  if #parts == 0 then
    return "no jobs"
  end
  return table.concat(parts, ", ")
end

local commands = {}

function commands.start(rest)
  local prompt = vim.trim(rest)
  if prompt == "" then
    M.error("agentd: usage: :Agentd start {prompt}")
    return
  end
  M.call("agents_start", { tasks = { { prompt = prompt } } }, function(result)
    local id = result.jobs[1].id
    vim.notify(string.format("agentd: started %s (%s)", id, M.session()), vim.log.levels.INFO)
    require("agentd.ui").refresh()
  end)
end

function commands.jobs()
  require("agentd.ui").open()
end

function commands.cancel(rest)
  local ids = vim.split(vim.trim(rest), "%s+")
  if ids[1] == "" then
    M.error("agentd: usage: :Agentd cancel {id}...")
    return
  end
  M.call("agents_cancel", { jobs = ids }, function(result)
    for _, job in ipairs(result.jobs) do
      vim.notify(string.format("agentd: %s %s", job.id, job.state), vim.log.levels.INFO)
    end
    require("agentd.ui").refresh()
  end)
end

function commands.status()
  M.call("agents_status", {}, function(result)
    vim.notify(string.format("agentd %s: %s", M.session(), summary(result.jobs)), vim.log.levels.INFO)
  end)
end

M.subcommands = { "start", "jobs", "cancel", "status" }

-- The entry point of `:Agentd {subcommand} [args]`; a prompt keeps its spacing as typed.
function M.command(line)
  local name, rest = vim.trim(line):match("^(%S*)%s*(.*)$")
  local run = commands[name]
  if not run then
    M.error("agentd: usage: :Agentd " .. table.concat(M.subcommands, "|"))
    return
  end
  run(rest)
end

return M
