-- The floating jobs window of :Agentd jobs, its keys, and the long-poll loop that keeps it
-- current (agents_wait on the unfinished jobs, then agents_status, again) while it is open;
-- and the scratch buffer <CR> opens with a job's output.
local agentd = require("agentd")

local M = {}

-- `generation` changes whenever the loop restarts or the window closes, so answers of calls
-- made before are dropped; `poll_job` is the loop's call in flight (its curl job).
local state = { generation = 0, jobs = {}, line_jobs = {} }

local wait_ms = 25000
local queued_wait_ms = 2000
local finished = { completed = true, failed = true, cancelled = true, interrupted = true }

local function is_open()
  return state.win ~= nil and vim.api.nvim_win_is_valid(state.win)
end

local function elapsed(ms)
  local s = math.floor((ms or 0) / 1000)
  if s < 60 then
    return s .. "s"
  elseif s < 3600 then
    return string.format("%dm%02ds", math.floor(s / 60), s % 60)
  end
  return string.format("%dh%02dm", math.floor(s / 3600), math.floor(s % 3600 / 60))
end

local function request_text(request)
  if request.kind == "permission" then
    return string.format("wants %s: %s", request.permission, table.concat(request.patterns or {}, " && "))
  end
  local first = (request.questions or {})[1] or {}
  return "asks: " .. tostring(first.question)
end

local function job_line(job)
  local marker = job.state == "waiting" and "!" or " "
  local preview = job.description or (job.task or {}).prompt or ""
  if job.requests and job.requests[1] then
    preview = request_text(job.requests[1]) .. " | " .. preview
  end
  preview = preview:gsub("%s+", " ")
  local id = job.id:sub(1, 14)
  return string.format("%s %-14s %-11s %7s  %s", marker, id, job.state, elapsed(job.elapsed_ms), preview)
end

-- `problem`: why the list could not be read (the jobs shown are the last ones read); the loop
-- has stopped and `r` tries again.
local function render(jobs, problem)
  state.jobs = jobs
  local lines = {
    "agentd " .. agentd.session() .. "  (<CR> output, c cancel, a allow, d deny, r refresh, q close)",
  }
  state.line_jobs = {}
  for _, job in ipairs(jobs) do
    table.insert(lines, job_line(job))
    state.line_jobs[#lines] = job
  end
  if problem then
    table.insert(lines, "  " .. problem .. " (r: try again)")
  elseif #jobs == 0 then
    table.insert(lines, "  no jobs in this session: :Agentd start {prompt}")
  end
  local cursor = vim.api.nvim_win_get_cursor(state.win)
  vim.api.nvim_buf_set_option(state.buf, "modifiable", true)
  vim.api.nvim_buf_set_lines(state.buf, 0, -1, false, lines)
  vim.api.nvim_buf_set_option(state.buf, "modifiable", false)
  vim.api.nvim_win_set_cursor(state.win, { math.min(math.max(cursor[1], 2), #lines), 0 })
end

local poll

-- One turn of the loop: the session's jobs, then a wait on the unfinished ones.
local function refresh_from(generation)
  local function wanted()
    return generation == state.generation and is_open()
  end
  local function failed(problem)
    state.poll_job = nil
    render(state.jobs, problem)
  end
  state.poll_job = agentd.call("agents_status", {}, function(result)
    render(result.jobs)
    poll(generation, result.jobs, wanted, failed)
  end, { wanted = wanted, on_error = failed })
end

-- Waits until a queued or running job ends or needs input. A job already waiting would end the
-- wait at once, so it is left out; with only waiting jobs the wait ignores input and returns when
-- one of them ends, or after wait_ms (a request answered elsewhere shows by then). No wait ends
-- when a queued job starts, so while one is queued the wait is short.
function poll(generation, jobs, wanted, failed)
  local active, waiting, queued = {}, {}, false
  for _, job in ipairs(jobs) do
    if job.state == "waiting" then
      table.insert(waiting, job.id)
    elseif not finished[job.state] then
      table.insert(active, job.id)
      queued = queued or job.state == "queued"
    end
  end
  if #active == 0 and #waiting == 0 then
    state.poll_job = nil
    return
  end
  local params = { jobs = active, mode = "any", timeout_ms = queued and queued_wait_ms or wait_ms }
  if #active == 0 then
    params.jobs, params.on_input = waiting, "ignore"
  end
  state.poll_job = agentd.call("agents_wait", params, function()
    refresh_from(generation)
  end, { wanted = wanted, on_error = failed, timeout_s = wait_ms / 1000 + 10 })
end

local function stop_poll()
  state.generation = state.generation + 1
  if state.poll_job then
    vim.fn.jobstop(state.poll_job)
    state.poll_job = nil
  end
end

-- Restarts the loop at once (after a start, cancel or answer, or on `r`); a no-op while closed.
function M.refresh()
  if not is_open() then
    return
  end
  stop_poll()
  refresh_from(state.generation)
end

local function forget_window()
  stop_poll()
  local win = state.win
  state.win = nil
  return win
end

function M.close()
  local win = forget_window()
  if win and vim.api.nvim_win_is_valid(win) then
    vim.api.nvim_win_close(win, true)
  end
end

-- What the window is doing, for statuslines and tests: its window, buffer and poll curl job.
function M.status()
  return { win = is_open() and state.win or nil, buf = state.buf, poll_job = state.poll_job }
end

local function job_under_cursor()
  local job = state.line_jobs[vim.api.nvim_win_get_cursor(state.win)[1]]
  if not job then
    vim.notify("agentd: no job on this line", vim.log.levels.WARN)
  end
  return job
end

local function output_lines(job, partial)
  local lines = { string.format("# %s (%s)", job.id, job.state), "" }
  local text = partial or job.output
  if job.error then
    text = string.format("%s (%s, %s)", job.error.message or "", job.error.kind or "", job.error.phase or "")
  end
  vim.list_extend(lines, vim.split(text or "", "\n", { plain = true }))
  return lines
end

local function show_output(job, partial)
  local name = "agentd://" .. job.id
  local buf = vim.fn.bufnr(name)
  if buf == -1 then
    buf = vim.api.nvim_create_buf(true, true)
    vim.api.nvim_buf_set_name(buf, name)
  end
  vim.api.nvim_buf_set_option(buf, "buftype", "nofile")
  vim.api.nvim_buf_set_option(buf, "swapfile", false)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, output_lines(job, partial))
  vim.api.nvim_buf_set_option(buf, "filetype", "markdown")
  vim.api.nvim_set_current_buf(buf)
end

-- <CR>: like a picker, the window gives way to the output; a job still going shows what it
-- has written so far (agents_peek).
local function open_output()
  local job = job_under_cursor()
  if not job then
    return
  end
  M.close()
  if finished[job.state] then
    agentd.call("agents_status", { jobs = { job.id } }, function(result)
      show_output(result.jobs[1])
    end)
    return
  end
  agentd.call("agents_peek", { job = job.id }, function(result)
    show_output(result.job, result.partial_output)
  end)
end

local function cancel()
  local job = job_under_cursor()
  if job then
    agentd.call("agents_cancel", { jobs = { job.id } }, M.refresh)
  end
end

local function respond(job, params)
  params.job = job.id
  agentd.call("agents_respond", params, M.refresh)
end

local function answer_question(request, job)
  local questions = request.questions or {}
  if #questions ~= 1 then
    vim.notify("agentd: answer this with agentctl respond " .. job.id, vim.log.levels.WARN)
    return
  end
  local labels = vim.tbl_map(function(option)
    return option.label
  end, questions[1].options or {})
  vim.ui.select(labels, { prompt = questions[1].question }, function(label)
    if label then
      respond(job, { request = request.id, answers = { { label } } })
    end
  end)
end

-- a / d: the job's oldest pending request, allowed once or denied (a question: its options
-- to pick from, or rejected).
local function answer(allow)
  local job = job_under_cursor()
  if not job then
    return
  end
  local request = (job.requests or {})[1]
  if not request then
    vim.notify("agentd: " .. job.id .. " is not waiting for an answer", vim.log.levels.WARN)
  elseif not allow then
    local message = request.kind == "permission" and "denied in Neovim" or nil
    respond(job, { request = request.id, decision = "deny", message = message })
  elseif request.kind == "question" then
    answer_question(request, job)
  else
    respond(job, { request = request.id, decision = "allow" })
  end
end

local function map_keys(buf)
  local keys = {
    ["<CR>"] = open_output,
    c = cancel,
    a = function()
      answer(true)
    end,
    d = function()
      answer(false)
    end,
    r = M.refresh,
    q = M.close,
    ["<Esc>"] = M.close,
  }
  for lhs, rhs in pairs(keys) do
    vim.keymap.set("n", lhs, rhs, { buffer = buf, nowait = true, silent = true })
  end
end

local function create_window()
  state.jobs = {}
  state.buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_option(state.buf, "bufhidden", "wipe")
  vim.api.nvim_buf_set_option(state.buf, "filetype", "agentd")
  local width = math.max(20, math.min(vim.o.columns - 4, 110))
  local height = math.max(3, math.min(vim.o.lines - 6, 16))
  state.win = vim.api.nvim_open_win(state.buf, true, {
    relative = "editor",
    width = width,
    height = height,
    row = math.floor((vim.o.lines - height) / 2) - 1,
    col = math.floor((vim.o.columns - width) / 2),
    style = "minimal",
    border = "rounded",
  })
  vim.api.nvim_win_set_option(state.win, "cursorline", true)
  map_keys(state.buf)
  -- However the window goes (q, :close, another plugin), the loop and its curl job go with it.
  vim.api.nvim_create_autocmd("WinClosed", {
    pattern = tostring(state.win),
    once = true,
    callback = forget_window,
  })
end

function M.open()
  if is_open() then
    vim.api.nvim_set_current_win(state.win)
  else
    create_window()
  end
  M.refresh()
end

return M
