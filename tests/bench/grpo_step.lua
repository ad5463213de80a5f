-- grpo_step.lua [fp32|bf16|fp8 [fp32|bf16|fp8]] — times GRPO steps for `make bench`: the
-- built-in model when it exists (so the rewards vary), else a random tiny model; 8 prompts x
-- G = 8, at most 64 new tokens; the training passes in the given precision (fp32 by default),
-- the sampler on weights of the second (rollout_dtype; fp32 by default).
local r1 = require "r1"
local precision = arg and arg[1] or "fp32"
local rollout = arg and arg[2] or "fp32"
local dir = (os.getenv("R1LAB_DATADIR") or ".") .. "/models/builtin"
local ok, m = pcall(r1.load, dir)
if not ok then m = r1.init("tiny", {seed = 1}) end
r1.grpo{model = m, task = "add", steps = 3, prompts = 8, group = 8, max_new = 64,
  beta = 0.04, lr = 1e-6, precision = precision, rollout_dtype = rollout,
  on_step = function(s)
    print(("%s%s step %d: %.2f s (sampling %.2f, scoring %.3f, training %.2f), %.0f generated "
      .. "tokens/s, mean length %.1f"):format(precision,
      rollout == "fp32" and "" or ", " .. rollout .. " rollouts", s.step, s.t_sample + s.t_score + s.t_train,
      s.t_sample, s.t_score, s.t_train, s.gen_tokens_per_s, s.len_mean))
  end}
