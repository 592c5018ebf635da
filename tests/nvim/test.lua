-- The Neovim plugin's cases, run by run.sh in a headless Neovim against a real agentd
-- ($AGENTD_URL, token in $AGENTD_STATE_DIR) and the fake upstream. Every wait is vim.wait with
-- a deadline; a failed case prints why and the script ends with `cquit 1`, else `qall!`.
local function say(text)
  io.stderr:write(text .. "\n")
end

-- The plugin reports through vim.notify; the cases read what it said.
local notes = {}
vim.notify = function(message, level)
  table.insert(notes, { message = message, level = level or vim.log.levels.INFO })
end

local function notes_text()
  return table.concat(
    vim.tbl_map(function(note)
      return note.level .. ": " .. note.message
    end, notes),
    "\n"
  )
end

local function check(condition, why)
  if not condition then
    error(why .. "\nnotifications:\n" .. notes_text(), 2)
  end
end

local function wait_for(ms, what, condition)
  check(vim.wait(ms, condition, 20), string.format("timed out after %d ms waiting for %s", ms, what))
end

check(package.loaded["agentd"] == nil, "plugin/agentd.lua loaded the modules at startup")
check(vim.fn.exists(":Agentd") == 2, ":Agentd is not defined")

local agentd = require("agentd")
local ui = require("agentd.ui")

local function note_matching(level, pattern)
  for _, note in ipairs(notes) do
    if note.level == level and note.message:match(pattern) then
      return note.message:match(pattern)
    end
  end
end

local function start(prompt)
  local before = #notes
  vim.cmd("Agentd start " .. prompt)
  local id
  wait_for(10000, "the started notice", function()
    for i = before + 1, #notes do
      id = id or notes[i].message:match("^agentd: started (job_%x+)")
    end
    return id ~= nil
  end)
  return id
end

local function call(method, params)
  local done, result = false, nil
  agentd.call(method, params, function(r)
    done, result = true, r
  end)
  wait_for(10000, method, function()
    return done
  end)
  return result
end

local function window_lines()
  return vim.api.nvim_buf_get_lines(ui.status().buf, 0, -1, false)
end

local function line_of(id)
  for lnum, line in ipairs(window_lines()) do
    if line:find(id:sub(1, 14), 1, true) then
      return lnum, line
    end
  end
end

-- Waits until the window's line of job `id` matches `pattern`; returns the line.
local function wait_line(id, pattern, ms)
  local found
  wait_for(ms or 10000, id .. " showing " .. pattern, function()
    local _, line = line_of(id)
    found = line and line:match(pattern) and line
    return found ~= nil
  end)
  return found
end

local function press(keys, id)
  local status = ui.status()
  vim.api.nvim_set_current_win(status.win)
  vim.api.nvim_win_set_cursor(status.win, { line_of(id), 0 })
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), "x", false)
end

local function output_of(id)
  return call("agents_status", { jobs = { id } }).jobs[1]
end

local function curl_gone(job, pid)
  return vim.fn.jobwait({ job }, 0)[1] ~= -1 and not vim.loop.kill(pid, 0)
end

local cases = {}
local function case(name, run)
  table.insert(cases, { name = name, run = run })
end

case("the session follows the working directory", function()
  check(agentd.session() == "nvim-my_project", "session is " .. agentd.session())
end)

case(":Agentd completes its subcommands", function()
  local got = table.concat(vim.fn.getcompletion("Agentd st", "cmdline"), ",")
  check(got == "start,status", "completions: " .. got)
end)

case("the token comes from $AGENTD_STATE_DIR, then XDG_STATE_HOME, then HOME", function()
  local token = require("agentd.token")
  local state_dir = vim.env.AGENTD_STATE_DIR
  local value, source = token.find()
  check(value and #value > 0 and source == state_dir .. "/token", "state dir token from " .. tostring(source))
  local home = vim.env.HOME
  local xdg = vim.fn.tempname()
  vim.fn.mkdir(xdg .. "/agentd", "p")
  vim.fn.writefile({ "xdg-token" }, xdg .. "/agentd/token")
  vim.fn.mkdir(home .. "/.local/state/agentd", "p")
  vim.fn.writefile({ " home-token " }, home .. "/.local/state/agentd/token")
  vim.env.AGENTD_STATE_DIR = ""
  vim.env.XDG_STATE_HOME = xdg
  local from_xdg = token.find()
  vim.env.XDG_STATE_HOME = "relative/state"
  local from_home = token.find()
  vim.env.AGENTD_TOKEN = "env-token"
  local from_env = token.find()
  vim.env.AGENTD_TOKEN = nil
  vim.env.XDG_STATE_HOME = nil
  vim.env.AGENTD_STATE_DIR = state_dir
  check(from_xdg == "xdg-token", "XDG_STATE_HOME gave " .. tostring(from_xdg))
  check(from_home == "home-token", "a relative XDG_STATE_HOME gave " .. tostring(from_home))
  check(from_env == "env-token", "$AGENTD_TOKEN gave " .. tostring(from_env))
end)

case(":help agentd finds the doc, whose committed tags are current", function()
  local doc = vim.api.nvim_get_runtime_file("doc/agentd.txt", false)[1]
  check(doc ~= nil, "doc/agentd.txt is not on the runtimepath")
  vim.cmd("help :Agentd-jobs")
  check(vim.fn.expand("%:t") == "agentd.txt", "help opened " .. vim.fn.expand("%"))
  vim.cmd("close")
  local fresh = vim.fn.tempname()
  vim.fn.mkdir(fresh, "p")
  vim.fn.writefile(vim.fn.readfile(doc), fresh .. "/agentd.txt")
  vim.cmd("helptags " .. vim.fn.fnameescape(fresh))
  local committed = vim.fn.readfile(vim.fn.fnamemodify(doc, ":h") .. "/tags")
  local current = vim.deep_equal(vim.fn.readfile(fresh .. "/tags"), committed)
  check(current, "doc/tags is stale: run :helptags on doc/")
end)

local completed_id

case("a started job is listed and turns completed without a refresh", function()
  vim.cmd("Agentd jobs")
  check(ui.status().win ~= nil, "no jobs window")
  completed_id = start("say hello [[fake latency_ms=1500]]")
  local first = wait_line(completed_id, "^  job_%x+ +%a+ ")
  check(first:match(" queued ") or first:match(" running "), "first shown as " .. first)
  wait_line(completed_id, "^  job_%x+ +completed ")
  check(window_lines()[1]:find("nvim-my_project", 1, true), "header lacks the session: " .. window_lines()[1])
end)

case("<CR> opens the output in a markdown scratch buffer", function()
  vim.cmd("Agentd jobs")
  wait_line(completed_id, " completed ")
  press("<CR>", completed_id)
  wait_for(10000, "the output buffer", function()
    return vim.api.nvim_buf_get_name(0):match("agentd://" .. completed_id) ~= nil
  end)
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  check(text:find("echo: say hello", 1, true), "output buffer:\n" .. text)
  local kind = vim.bo.buftype .. "/" .. vim.bo.filetype
  check(kind == "nofile/markdown", "buftype/filetype " .. kind)
  check(ui.status().win == nil, "the jobs window stayed open")
end)

case("<CR> on a running job shows its output so far", function()
  -- The text comes in 20 chunks over 20 s, the first (with "echo: ") after about 1 s.
  local id = start(string.rep("stream ", 30) .. "[[fake latency_ms=20000 chunks=20]]")
  vim.cmd("Agentd jobs")
  wait_line(id, " running ")
  wait_for(10000, "some output so far", function()
    return (call("agents_peek", { job = id }).partial_output or ""):find("echo: ", 1, true) ~= nil
  end)
  press("<CR>", id)
  wait_for(10000, "the partial output buffer", function()
    return vim.api.nvim_buf_get_name(0):match("agentd://" .. id) ~= nil
  end)
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  check(text:find("(running)", 1, true) and text:find("echo: ", 1, true), "partial output buffer:\n" .. text)
  vim.cmd("Agentd cancel " .. id)
  wait_for(10000, "the cancel notice", function()
    return note_matching(vim.log.levels.INFO, id .. " cancelled") ~= nil
  end)
end)

case("c cancels a slow job", function()
  local id = start("take your time [[fake latency_ms=30000]]")
  vim.cmd("Agentd jobs")
  wait_line(id, " running ")
  press("c", id)
  wait_line(id, " cancelled ")
  check(output_of(id).state == "cancelled", "agentd says " .. output_of(id).state)
end)

local function waiting_job()
  local id = start("clean up [[fake permission=bash patterns=rm_-rf_build]]")
  vim.cmd("Agentd jobs")
  local line = wait_line(id, "^! job_%x+ +waiting ")
  check(line:find("wants bash: rm -rf build", 1, true), "waiting line: " .. line)
  return id
end

case("a allows a pending permission and the job completes", function()
  local id = waiting_job()
  press("a", id)
  wait_line(id, "^  job_%x+ +completed ")
  local output = output_of(id).output or ""
  check(output:find("permission once:", 1, true), "output: " .. output)
end)

case("d denies a pending permission and the job sees it", function()
  local id = waiting_job()
  press("d", id)
  wait_line(id, " completed ")
  local output = output_of(id).output or ""
  check(output:find("permission rejected: denied in Neovim", 1, true), "output: " .. output)
end)

case("a on a question offers its options and answers the one picked", function()
  local id = start("pick [[fake question=red|green|blue]]")
  vim.cmd("Agentd jobs")
  local line = wait_line(id, "^! job_%x+ +waiting ")
  check(line:find("asks: Which colour?", 1, true), "waiting line: " .. line)
  local offered
  local select = vim.ui.select
  vim.ui.select = function(items, _, on_choice)
    offered = table.concat(items, ",")
    on_choice("green")
  end
  local ok, why = pcall(press, "a", id)
  vim.ui.select = select
  check(ok, tostring(why))
  check(offered == "red,green,blue", "offered " .. tostring(offered))
  wait_line(id, " completed ")
  local output = output_of(id).output or ""
  check(output:find("answered: green", 1, true), "output: " .. output)
end)

case("d on a question rejects it", function()
  local id = start("pick [[fake question=red|green]]")
  vim.cmd("Agentd jobs")
  wait_line(id, "^! job_%x+ +waiting ")
  press("d", id)
  wait_line(id, "^  job_%x+ +completed ")
  local job = output_of(id)
  local answered = (job.answered or {})[1] or {}
  check(answered.decision == "deny" and answered.by == "caller", "answered: " .. vim.inspect(job.answered))
end)

-- The token must not show in `ps`: curl's command line is world-readable.
local function check_argv(pid)
  local file = io.open("/proc/" .. pid .. "/cmdline", "rb")
  check(file ~= nil, "no /proc/" .. pid .. "/cmdline")
  local argv = file:read("*a")
  file:close()
  local secret = require("agentd.token").find()
  check(argv:find("curl", 1, true) and not argv:find(secret, 1, true), "the token is on curl's command line")
end

case("closing the window stops the poll and its curl", function()
  local id = start("long one [[fake latency_ms=30000]]")
  for _, close in ipairs({ "q", "close" }) do
    vim.cmd("Agentd jobs")
    wait_line(id, " running ")
    local job
    wait_for(5000, "the poll's curl", function()
      job = ui.status().poll_job
      return job ~= nil and vim.fn.jobwait({ job }, 0)[1] == -1
    end)
    local pid = vim.fn.jobpid(job)
    check_argv(pid)
    if close == "q" then
      press("q", id)
    else
      vim.api.nvim_set_current_win(ui.status().win)
      vim.cmd("close")
    end
    check(ui.status().win == nil and ui.status().poll_job == nil, "still open after " .. close)
    wait_for(5000, "curl " .. pid .. " to end after " .. close, function()
      return curl_gone(job, pid)
    end)
  end
  call("agents_cancel", { jobs = { id } })
end)

case(":Agentd status sums up the session", function()
  vim.cmd("Agentd status")
  wait_for(10000, "the status line", function()
    return note_matching(vim.log.levels.INFO, "^agentd nvim%-my_project: .*completed") ~= nil
  end)
end)

case("a unix:PATH url goes through the socket", function()
  agentd.setup({ url = "unix:" .. vim.env.AGENTD_TEST_SOCKET })
  vim.cmd("Agentd status")
  wait_for(10000, "the status line over the socket", function()
    return note_matching(vim.log.levels.INFO, "^agentd nvim%-my_project: .*completed") ~= nil
  end)
end)

-- Returns the ERROR notifications that `command` led to, after waiting for the first.
local function errors_of(command)
  local before = #notes
  vim.cmd(command)
  local found = {}
  wait_for(10000, "an error from " .. command, function()
    for i = before + 1, #notes do
      if notes[i].level == vim.log.levels.ERROR then
        table.insert(found, notes[i].message)
      end
    end
    return #found > 0
  end)
  return table.concat(found, "\n")
end

case("a daemon that is down is an error, not a traceback", function()
  local server = vim.loop.new_tcp()
  server:bind("127.0.0.1", 0)
  local port = server:getsockname().port
  server:close()
  agentd.setup({ url = "http://127.0.0.1:" .. port })
  local text = errors_of("Agentd status")
  check(text:find("cannot reach", 1, true) and not text:find("traceback", 1, true), "error: " .. text)
  text = errors_of("Agentd jobs")
  check(text:find("cannot reach", 1, true), "jobs window error: " .. text)
  local shown = table.concat(window_lines(), "\n")
  check(shown:find("cannot reach", 1, true) and shown:find("r: try again", 1, true), "window:\n" .. shown)
  ui.close()
end)

case("a wrong token is an error naming 401", function()
  agentd.setup({ token = "wrong-token" })
  local text = errors_of("Agentd status")
  check(text:find("401 Unauthorized", 1, true), "error: " .. text)
end)

case("an RPC error shows its JSON-RPC message", function()
  agentd.setup({ session = "not a session" })
  local text = errors_of("Agentd start hello")
  check(text:find("-32602", 1, true) and text:find("session", 1, true), "error: " .. text)
end)

local failed = 0
for _, c in ipairs(cases) do
  notes = {}
  agentd.setup({})
  vim.v.errmsg = ""
  local ok, why = xpcall(c.run, debug.traceback)
  if ok and vim.v.errmsg ~= "" then
    ok, why = false, "Neovim reported an error: " .. vim.v.errmsg
  end
  ui.close()
  if ok then
    say("PASS " .. c.name)
  else
    failed = failed + 1
    say("FAIL " .. c.name .. ": " .. tostring(why))
  end
end
say(string.format("%d of %d cases failed", failed, #cases))
vim.cmd(failed == 0 and "qall!" or "cquit 1")
