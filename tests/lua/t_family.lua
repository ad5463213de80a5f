-- t_family.lua — the GRPO family from Lua, end to end on the built-in model: each option runs a
-- step under its TRL name and reports what it did (the objectives themselves are checked
-- against PyTorch in t_grpo_ref), the controls score what they say, GDPO's advantages are
-- normalised over the batch, and the old spellings still work.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local t = require "tap"
local r1 = require "r1"
local src = os.getenv("top_srcdir") or "."
r1.set_threads(1)

local function run(opts, on_group)
  local m = r1.load(src .. "/models/builtin")
  -- 3-digit sums sampled hot: the built-in model gets some wrong, so the groups' rewards differ
  local o = {model = m, tasks = "add:3", steps = 1, prompts = 2, group = 4, max_new = 120,
             seed = 5, beta = 0, temperature = 1.3, on_group = on_group}
  for k, v in pairs(opts) do o[k] = v end
  return r1.grpo(o)
end
local function finite(x) return x == x and x > -math.huge and x < math.huge end

-- GSPO and CISPO with two updates per batch, where the ratio moves
local gspo = run{importance_sampling_level = "sequence", mu = 2, eps_low = 3e-4,
                 eps_high = 4e-4, lr = 1e-4}
t.ok(finite(gspo.grad_norm) and gspo.grad_norm > 0, "GSPO trains (grad norm " ..
     gspo.grad_norm .. ")")
t.ok(gspo.clip_frac >= 0 and gspo.clip_frac <= 1, ("GSPO's clip fraction %.3f (whole "
     .. "completions at once)"):format(gspo.clip_frac))
local cispo = run{loss_type = "cispo", eps_high = 5, mu = 2, lr = 1e-4}
t.ok(finite(cispo.grad_norm) and cispo.grad_norm > 0, "CISPO trains")
-- the old name of loss_type with an old value still runs, as DAPO
local dapo = run{agg = "token"}
t.ok(finite(dapo.grad_norm), "agg = \"token\" (the old spelling) runs as loss_type dapo")

-- the entropy selection keeps about the top fifth of each completion's tokens
local ent = run{top_entropy_quantile = 0.2, entropy_coef = 0.01}
t.ok(ent.entropy_kept > 0.15 and ent.entropy_kept < 0.45,
     ("top_entropy_quantile 0.2 keeps %.3f of the tokens"):format(ent.entropy_kept))
t.is(run{}.entropy_kept, 1.0, "and 1 (the default) keeps them all")

-- the off-policy mask against an fp8 sampler: a share in 0..1, 0 when off; on countdown, which
-- the built-in model solves about half the time, so that groups hold wrong answers (A < 0)
local opm = run{off_policy_mask_threshold = 1e-6, rollout_dtype = "fp8", beta = 0.04,
                use_bias_correction_kl = true, prompts = 4, group = 8, tasks = "countdown:1"}
t.ok(opm.off_policy_masked > 0 and opm.off_policy_masked <= 0.5,
     ("off_policy_mask_threshold: %.3f of the completions masked (only A < 0 ones)")
     :format(opm.off_policy_masked))
t.ok(finite(opm.kl) and opm.kl > -1e-9, "the bias-corrected KL run reports its KL (" ..
     tostring(opm.kl) .. ")")

-- GDPO: over the step's batch the advantages have mean 0 and std 1
local advs = {}
run({multi_objective_aggregation = "normalize_then_sum", prompts = 4, group = 8,
     rewards = {"accuracy", {"format", weight = 0.5}}},
    function(g) for _, c in ipairs(g.completions) do advs[#advs + 1] = c.advantage end end)
local s, q = 0, 0
for _, a in ipairs(advs) do s, q = s + a, q + a * a end
local mean = s / #advs
local sd = math.sqrt((q - #advs * mean * mean) / (#advs - 1))
t.ok(#advs == 32 and math.abs(mean) < 1e-9 and math.abs(sd - 1) < 1e-3,
     ("GDPO: %d advantages, mean %.1e, std %.4f"):format(#advs, mean, sd))

-- the controls
local function rewards_of(opts)
  local got = {}
  run(opts, function(g)
    for _, c in ipairs(g.completions) do got[#got + 1] = {c.text, c.rewards} end
  end)
  return got
end
local rnd = rewards_of{rewards = {"random"}}
local rnd2 = rewards_of{rewards = {"random"}}
local ones, same = 0, true
for i, x in ipairs(rnd) do
  t.ok(x[2].random == 0 or x[2].random == 1, "random is a coin (" .. x[2].random .. ")")
  ones = ones + x[2].random
  same = same and rnd2[i][2].random == x[2].random
end
t.ok(same, "random: the same seed flips the same coins")
t.ok(ones > 0 and ones < #rnd, ("random: %d of %d ones"):format(ones, #rnd))
local inc = rewards_of{rewards = {"incorrect", "accuracy", "format_only"}}
local agree = true
for _, x in ipairs(inc) do
  local r = x[2]
  -- an answer that is wrong scores 1; a right one 0; no answer 0
  agree = agree and (r.incorrect == 1) == (r.format_only == 1 and r.accuracy == 0)
end
t.ok(agree, "incorrect is 1 exactly when there is an answer and it is wrong")
local ov = run{rewards = {"accuracy", {"overlong", max = 8, cache = 4}}, max_new = 16}
t.ok(ov.overlong < 0 and ov.overlong >= -1,
     ("overlong max 8 cache 4 punishes the long sums' reasoning (%.3f)"):format(ov.overlong))
t.raises(function() run{rewards = {{"overlong", max = 8, cache = 9}}} end,
         "cache 9 is longer than max 8", "overlong: a cache longer than max")

-- the TR-DPO sync runs (its arithmetic is checked in t_grpo)
local sync = run{beta = 0.04, sync_ref_model = true, ref_model_sync_steps = 1,
                 ref_model_mixup_alpha = 0.6, steps = 2}
t.is(sync.step, 2, "sync_ref_model with ref_model_sync_steps 1 runs two steps")

t.done()
