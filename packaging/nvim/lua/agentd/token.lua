-- Finds agentd's bearer token the way agentctl does: $AGENTD_TOKEN, else the token file of
-- $AGENTD_STATE_DIR, else of the daemon's default state dir, else the system service's file.
-- Read on every call, so a token rotated by a restarted daemon is picked up at once.
local M = {}

-- Empty variables count as unset, as in agentctl and the XDG spec.
local function env(name)
  local value = vim.env[name]
  if value == nil or value == "" then
    return nil
  end
  return value
end

local function trimmed(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- The candidate files, most specific first; an explicit $AGENTD_STATE_DIR is the only one.
function M.candidates()
  local state_dir = env("AGENTD_STATE_DIR")
  if state_dir then
    return { state_dir .. "/token" }
  end
  local files = {}
  local xdg = env("XDG_STATE_HOME")
  local home = env("HOME")
  if xdg and xdg:sub(1, 1) == "/" then
    table.insert(files, xdg .. "/agentd/token")
  elseif home then
    table.insert(files, home .. "/.local/state/agentd/token")
  end
  table.insert(files, "/var/lib/agentd/token")
  return files
end

local function read_file(path)
  local file = io.open(path, "r")
  if not file then
    return nil
  end
  local text = file:read("*a")
  file:close()
  text = trimmed(text or "")
  if text == "" then
    return nil
  end
  return text
end

-- Returns the token (or nil: agentd may run with --auth none) and where it came from, for
-- error messages.
function M.find(configured)
  if configured and configured ~= "" then
    return trimmed(configured), "setup{token}"
  end
  local from_env = env("AGENTD_TOKEN")
  if from_env then
    return trimmed(from_env), "$AGENTD_TOKEN"
  end
  local files = M.candidates()
  for _, path in ipairs(files) do
    local token = read_file(path)
    if token then
      return token, path
    end
  end
  return nil, "no token in " .. table.concat(files, ", ")
end

return M
