-- Defines :Agentd. Loading is lazy: the modules under lua/agentd/ are required only when the
-- command first runs, so the plugin costs nothing at startup.
if vim.g.loaded_agentd then
  return
end
vim.g.loaded_agentd = true

vim.api.nvim_create_user_command("Agentd", function(opts)
  require("agentd").command(opts.args)
end, {
  nargs = "+",
  desc = "agentd sub-agent jobs: start {prompt} | jobs | cancel {id} | status",
  complete = function(lead, line)
    if line:match("^%s*%S+%s+%S*$") then
      return vim.tbl_filter(function(name)
        return name:sub(1, #lead) == lead
      end, require("agentd").subcommands)
    end
    return {}
  end,
})
