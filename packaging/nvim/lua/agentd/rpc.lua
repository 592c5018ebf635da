-- JSON-RPC 2.0 over HTTP POST /rpc to agentd, one curl job per call (Neovim 0.7 has no HTTP
-- client). The token reaches curl as a config file on its stdin, never on its command line,
-- where `ps` would show it to every user of the machine.
local token = require("agentd.token")

local M = {}

local next_id = 0

-- A curl config file's quoted string: backslash and double quote are its only specials here,
-- as JSON escapes every control character.
local function quoted(s)
  return '"' .. s:gsub("\\", "\\\\"):gsub('"', '\\"') .. '"'
end

-- `unix:/PATH` (as agentctl takes it) goes through curl's --unix-socket.
local function endpoint(url)
  local socket = url:match("^unix:(.+)$")
  if socket then
    return "http://localhost/rpc", { "--unix-socket", socket }
  end
  return url:gsub("/+$", "") .. "/rpc", {}
end

local function curl_config(url, bearer, body)
  local lines = {
    "url = " .. quoted(url),
    "header = " .. quoted("Content-Type: application/json"),
    "data-binary = " .. quoted(body),
  }
  if bearer then
    table.insert(lines, "header = " .. quoted("Authorization: Bearer " .. bearer))
  end
  return table.concat(lines, "\n") .. "\n"
end

local function rpc_error_text(method, err)
  local text = string.format("agentd: %s: %s (%s)", method, tostring(err.message), tostring(err.code))
  local data = type(err.data) == "table" and err.data or {}
  if type(data.field) == "string" then
    text = text .. string.format(": %s %s", data.field, tostring(data.reason or ""))
  end
  return text
end

-- Turns curl's exit, stdout (the body, then the status line that -w adds) and stderr into
-- (error text) or (nil, result).
local function outcome(call, code, stdout, stderr)
  if code ~= 0 then
    local why = vim.trim(table.concat(stderr, "\n"))
    return string.format("agentd: cannot reach %s: %s", call.url, why ~= "" and why or ("curl exit " .. code))
  end
  local text = table.concat(stdout, "\n")
  local body, status = text:match("^(.*)\n(%d+)$")
  status = tonumber(status)
  if status == 401 then
    local source = call.token_source
    return string.format("agentd: 401 Unauthorized from %s: the token was refused (%s)", call.url, source)
  end
  if status ~= 200 then
    return string.format("agentd: HTTP %s from %s: %s", tostring(status), call.url, vim.trim(body or text))
  end
  local ok, reply = pcall(vim.json.decode, body)
  if not ok or type(reply) ~= "table" then
    return string.format("agentd: %s: the answer from %s is not JSON", call.method, call.url)
  end
  if type(reply.error) == "table" then
    return rpc_error_text(call.method, reply.error)
  end
  return nil, reply.result
end

-- Calls `method` with `params` (a table) and later `callback(err, result)` on the main loop:
-- err is a message fit for the user, result the decoded JSON-RPC result. `settings`: url,
-- token (nil: discover it), timeout_s. Returns the curl job id (jobstop cancels the call),
-- or nil when curl could not start (the callback then has already run).
function M.call(settings, method, params, callback)
  next_id = next_id + 1
  local url, extra_args = endpoint(settings.url)
  local bearer, source = token.find(settings.token)
  if bearer and not bearer:match("^[%w%p]+$") then
    callback(string.format("agentd: the token from %s is not one visible-ASCII word", source))
    return nil
  end
  local body = vim.json.encode({ jsonrpc = "2.0", id = next_id, method = method, params = params })
  local call = { url = url, method = method, token_source = source }
  local stdout, stderr = {}, {}
  local args = { "curl", "--silent", "--show-error", "--config", "-", "--write-out", "\n%{http_code}" }
  vim.list_extend(args, { "--max-time", tostring(settings.timeout_s or 30) })
  vim.list_extend(args, extra_args)
  local ok, job = pcall(vim.fn.jobstart, args, {
    stdout_buffered = true,
    stderr_buffered = true,
    on_stdout = function(_, data)
      stdout = data
    end,
    on_stderr = function(_, data)
      stderr = data
    end,
    on_exit = function(_, code)
      callback(outcome(call, code, stdout, stderr))
    end,
  })
  if not ok or job <= 0 then
    callback("agentd: cannot run curl: " .. (ok and "jobstart failed" or tostring(job)))
    return nil
  end
  vim.fn.chansend(job, curl_config(url, bearer, body))
  vim.fn.chanclose(job, "stdin")
  return job
end

return M
