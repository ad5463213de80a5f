-- my_reward.lua — a reward function written in Lua: besides being right and well formed,
-- shorter reasoning earns more.  Any function(sample) -> number can join the built-in rules.
--   r1lab run scripts/my_reward.lua [--steps 5]
local r1 = require "r1"
local common = require "common"
local a = common.args{steps = 5, group = 8, prompts = 4, max_new = 96}

local m = common.model()

-- sample = {prompt, completion, think, answer, target, task, lang, tokens, max_tokens}
local function brevity(sample)
  local lines = select(2, sample.think:gsub("\n", "\n")) + 1
  return -lines / 10            -- one tenth of a point per line of reasoning
end

r1.grpo{model = m, task = "add", steps = a.steps, group = a.group, prompts = a.prompts,
  max_new = a.max_new, beta = 0.04, lr = 1e-5,
  rewards = {"accuracy", "format", {name = "brevity", weight = 0.5, fn = brevity}},
  on_step = function(s)
    print(("step %d  accuracy %.2f  brevity %.2f  length %.1f"):format(s.step, s.accuracy,
      s.brevity, s.len_mean))
  end}
