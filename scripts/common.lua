-- common.lua — shared by the example scripts: finding the built-in model, reading
-- "--name value" arguments and writing result files.  require "common" works because r1lab puts scripts/ on
-- package.path.
local r1 = require "r1"
local M = {}

-- The built-in model (models/builtin under r1lab's data directory), or a random tiny model
-- with a note when it is not there (a fresh checkout before scripts/train_builtin.lua ran).
function M.model(path)
  local dir = path or M.datadir() .. "/models/builtin"
  local ok, m = pcall(r1.load, dir)
  if ok then return m end
  io.stderr:write("note: no model at " .. dir .. " (" .. tostring(m):gsub("\n.*", "")
    .. "); using a random tiny model\n")
  return r1.init("tiny", {seed = 1})
end

function M.datadir()
  local d = os.getenv("R1LAB_DATADIR")
  if d and d ~= "" then return d end
  -- scripts/ sits in the data directory: use this file's location
  local src = debug.getinfo(1, "S").source:match("^@(.*)/scripts/common%.lua$")
  return src or "."
end

-- Reads --key value pairs from arg into a table, converting numbers; defaults fill the rest.
function M.args(defaults)
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  local i = 1
  while arg and arg[i] do
    local k = arg[i]:match("^%-%-(.+)$")
    if not k or arg[i + 1] == nil then error("expected --name value, got " .. arg[i], 0) end
    local v = arg[i + 1]
    out[k] = tonumber(v) or (v == "true" and true) or (v ~= "false" and v) or false
    i = i + 2
  end
  return out
end

-- Writes text to path through a temporary file renamed over it, so that a run stopped half-way
-- leaves the old file or the new one, never a torn one.
function M.write_atomic(path, text)
  local f = assert(io.open(path .. ".tmp", "w"))
  f:write(text)
  f:close()
  assert(os.rename(path .. ".tmp", path))
end

-- The built-in model's recipe, shared by train_builtin.lua (which made models/builtin) and
-- evidence.lua (which pretrains bases like it): the pretraining mixture (every task r1lab has,
-- weighted toward the cells that take longest to learn; a weight is shared by the difficulties
-- of its entry), the pretraining settings and the dense student's shape.  The second edition:
-- the first pretrained 500 steps on addition mostly; a budget frontier (3000 steps of this kind
-- of mixture) was still rising at the end, and so were the 4500- and 5000-step runs' (sort 3,
-- chat 2), so this one pretrains 6000, with less weight on the cells those runs had learnt by
-- half-way (add 1-3, bool, sort 1-2) and more on the ones they had not (linear 2,
-- sort 3, the word chores).
M.recipe = {
  tasks = "add:1-3@2,add:4@1.5,mul:1@1,mul:2-3@3,linear:1@1,linear:2@2.5,bool:1-2@2,"
    .. "sort:1-2@1.5,sort:3@2,countdown:1@3,chat:1-2@4.5",
  pretrain = {steps = 6000, batch = 16, seq_len = 256, lr = 3e-3, min_lr = 1e-4, warmup = 100,
              precision = "bf16", typed_frac = 0.3},
  student = {hidden_size = 128, num_hidden_layers = 4, num_attention_heads = 4,
             q_lora_rank = 64, kv_lora_rank = 32, qk_nope_head_dim = 16, qk_rope_head_dim = 8,
             v_head_dim = 16, intermediate_size = 384, n_routed_experts = 0,
             num_nextn_predict_layers = 0},
}

-- The first edition's mixture and pretraining, which scripts/evidence.lua keeps pretraining its
-- bases with: the README's experiments were measured on it (addition up to 3 digits the core
-- skill, 4 digits seen a little so that RL has room), and rerunning them must give their tables.
M.evidence_recipe = {
  tasks = "add:1-3@12,add:4@2,mul:1-2@3,linear:1@1,bool:1@1,chat:1-2@1",
  pretrain = {steps = 500, batch = 16, seq_len = 256, lr = 3e-3, min_lr = 3e-4, warmup = 30},
  student = M.recipe.student,
}

return M
