-- t_nonfinite.lua — a reward, an advantage, a loss or a gradient that is not a finite number
-- stops the run with an error naming the step, the prompt and the reward; the weights, the
-- checkpoint and the metrics written before it stay as they were (no NaN saved, and the JSONL
-- stays valid JSON).  The reliability probe's H1, in all its variants.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local t = require "tap"
local r1 = require "r1"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p '" .. dir .. "'")
local function fresh()
  return r1.init({preset = "tiny", num_hidden_layers = 2}, {seed = 3})
end
local probe = {{1, 3, 40, 41, 4}}

-- a reward that turns infinite at the second step: the first step's checkpoint survives
local m = fresh()
local calls = 0
local ok, err = pcall(r1.grpo, {model = m, task = "add", difficulty = 1, steps = 3, group = 2,
  prompts = 1, max_new = 8, save = dir .. "/ck", save_every = 1, log = dir .. "/log.jsonl",
  rewards = {"format", {name = "per_token", fn = function()
    calls = calls + 1
    if calls > 2 then return 1 / 0 end
    return calls * 0.5
  end}}})
t.ok(not ok, "an infinite reward stops r1.grpo with an error")
t.like(tostring(err), "step 2, prompt 1, completion 1: reward 'per_token' is inf",
  "naming the step, the prompt, the completion and the reward")
local loss = m:forward(probe).loss
t.ok(loss == loss and loss < math.huge, "the model's weights stay finite (loss " .. loss .. ")")
local ck = r1.load(dir .. "/ck")
local cl = ck:forward(probe).loss
t.ok(cl == cl and cl < math.huge, "the checkpoint of step 1 is kept and finite")
local lines, valid = 0, true
for line in io.lines(dir .. "/log.jsonl") do
  lines = lines + 1
  valid = valid and not line:find("nan") and not line:find("inf")
end
t.ok(lines == 1 and valid, "the metrics hold the one finished step, valid JSON")

-- NaN from the first call: nothing is trained, nothing saved
m = fresh()
local before = m:forward(probe).loss
ok, err = pcall(r1.grpo, {model = m, task = "add", difficulty = 1, steps = 2, group = 2,
  prompts = 1, max_new = 8, save = dir .. "/ck2",
  rewards = {{name = "nanny", fn = function() return 0 / 0 end}}})
t.like(tostring(err), "reward 'nanny' is %-?nan", "a NaN reward is named")
t.is(m:forward(probe).loss, before, "and the model is untouched")
t.ok(io.open(dir .. "/ck2/config.json") == nil, "no checkpoint is written")

-- weights and the learning rate: refused before the run starts
t.raises(function()
  r1.grpo{model = fresh(), task = "add", steps = 1, group = 2, prompts = 1, max_new = 4,
    rewards = {{"format", weight = math.huge}}}
end, "weight", "an infinite reward weight is refused")
t.raises(function()
  r1.grpo{model = fresh(), task = "add", steps = 1, group = 2, prompts = 1, max_new = 4, lr = 0 / 0}
end, "lr", "a NaN learning rate is refused")
t.raises(function()
  r1.pretrain{model = fresh(), tasks = "add:1", steps = 1, batch = 2, seq_len = 64, lr = math.huge}
end, "lr", "so is an infinite one for pre-training")

-- sizes have a ceiling (the probe's M8: prompts = 1e6 ate all the memory)
t.raises(function()
  r1.grpo{model = fresh(), task = "add", steps = 1, group = 64, prompts = 4096, max_new = 4}
end, "above the ceiling of 16384", "a step of more than 16384 completions is refused")
t.raises(function()
  r1.grpo{model = fresh(), task = "add", steps = 1, group = 2, prompts = 1000000, max_new = 4}
end, "prompts expects an integer in 1..4096", "prompts = 1e6 is refused by its range")

os.execute("rm -rf '" .. dir .. "'")
t.done()
