-- grpo_addition.lua — a few GRPO steps on addition with the accuracy and format rewards,
-- printing each step's rewards, and the accuracy on held-out problems before and after.
--   r1lab run scripts/grpo_addition.lua [--steps 10] [--group 8] [--prompts 8]
--                                       [--difficulty 3] [--max_new 96]
local r1 = require "r1"
local common = require "common"
local a = common.args{steps = 10, group = 8, prompts = 8, difficulty = 3, max_new = 96,
                      eval = 16, lr = 2e-5}

local m = common.model()

local function accuracy()
  local task = r1.tasks.add{difficulty = a.difficulty, seed = 424242}
  local right = 0
  for s in task:samples(a.eval) do
    local _, res = m:ask(s.prompt, {max_tokens = a.max_new})
    if task:verify(res.text, s.target) then right = right + 1 end
  end
  return right / a.eval
end

local before = accuracy()
r1.grpo{model = m, task = "add", difficulty = a.difficulty, steps = a.steps, group = a.group,
  prompts = a.prompts, max_new = a.max_new, lr = a.lr, beta = 0.04,
  on_step = function(s)
    print(("step %3d  reward %.3f  accuracy %.3f  format %.3f  length %5.1f  kl %.4f  %.1fs")
      :format(s.step, s.reward, s.accuracy, s.format, s.len_mean, s.kl,
              s.t_sample + s.t_score + s.t_train))
  end}
print(("held-out accuracy at difficulty %d: %.2f -> %.2f"):format(a.difficulty, before,
  accuracy()))
