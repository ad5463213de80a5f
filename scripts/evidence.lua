-- evidence.lua — the experiments behind the README's "Results at toy scale": the effects the
-- DeepSeek-R1 paper reports, reproduced on the tiny model with fixed seeds.
--
--   r1lab run scripts/evidence.lua --exp NAME --stages DIR [--out evidence] [--threads 0]
--                                  [--lr 3e-5] [--temperature 0.7] [--minutes 10] [--steps N]
--                                  [--mu 1] [--dynamic false] [--beta 0.04] [--gamma 0.001]
--                                  [--group 8] [--prompts 8] [--loss_type grpo] [--zero_plain 0]
--                                  [--zero_steps 500] [--seeds 3]
-- (--mu: policy updates per batch, where clipping acts; --dynamic: dynamic sampling in the
-- harder and zero runs; the sampling experiment tries it both ways; --beta: the KL weight, 0
-- loads no reference; --gamma: the routing bias's balancing step during GRPO, 0 freezes it)
--
-- DIR holds the models that `r1lab run scripts/train_builtin.lua --stages DIR` kept after
-- each stage (DIR/pretrain, DIR/sft, DIR/rl2).  The experiments (--exp):
--   harder    GRPO from the cold-start SFT model on a harder difficulty (add, 4 digits) for at
--             most --minutes 10: held-out accuracy and format rate before and after
--   sampling  the same start, the same steps, with and without clip-higher and dynamic sampling
--   zero      "R1-Zero": GRPO straight from the pretrained base, accuracy + format rewards only
--             (format, accuracy and completion length over training), then the same run with
--             the language-consistency reward added: the share of off-language words in the
--             reasoning (writes zero.md and lang.md; --exp lang is the same experiment)
--   zerobase  only the base of the zero runs: with --zero_plain P a base pretrained on a corpus
--             whose documents are plain text (no chat format) with probability P, for
--             --zero_steps steps (the first edition's pretraining otherwise the same)
--   distill   a small dense student distilled from the final model against the same student
--             trained with GRPO alone for the same wall time
--   mismatch  routing mismatch in RL: GRPO from the cold-start model with an fp8 sampler, with
--             and without routing replay, beside an fp32 sampler (--seeds 3 each, --steps 40):
--             the router-flip share per MoE layer, the log-prob mismatch, reward, accuracy
--   balance   expert-load balancing in pretraining, as DeepSeek-V3 compares it: the first
--             edition's pretraining from the same initialisation with the auxiliary-loss-free
--             bias update, with nothing, and with the sequence-wise auxiliary loss instead
--             (--steps, default the recipe's): loss against MaxVio per MoE layer (needs no
--             --stages; --rows 1,5 runs only those rows of the table)
--   mtp       MTP through post-training: GRPO from the cold-start SFT model with the built-in
--             recipe's first RL stage, with the MTP loss on the sampled completions
--             (mtp_lambda 0.1) and without it, --seeds each: the MTP module's acceptance as a
--             speculative-decoding draft before and after, beside accuracy
--   family    the policy losses from the cold-start model on 4-digit sums, the same budget per
--             cell (--steps 16, mu 2), --seeds each: GRPO, DAPO, Dr. GRPO, GSPO, CISPO
--   kl        GRPO with and without the KL term (beta 0.04 / 0) over a longer run (--steps 40)
--   controls  the Spurious Rewards controls: the accuracy reward against random, incorrect and
--             format-only rewards, from the cold-start model and from the R1-Zero base
--             (--steps 12), with the clip fraction; and "aha" (aha.md): the share of samples
--             whose reasoning holds a self-verification word, first step and last
--             (family, kl and controls keep each run in OUT/cells/; --part K/N runs a share of
--             them, for N processes side by side; the table comes once all are in)
-- Each writes DIR-independent results to OUT/NAME.md (a Markdown table) and prints it.
local r1 = require "r1"
local common = require "common"
local a = common.args{exp = "harder", stages = "", out = "evidence", threads = 0, seed = 1,
                      minutes = 10, steps = 0, n = 64, quick = false, lr = 3e-5,
                      temperature = 0.7, mu = 1, dynamic = false, beta = 0.04,
                      group = 8, prompts = 8, loss_type = "grpo", gamma = 0.001,
                      zero_plain = 0, seeds = 3,
                      zero_steps = common.evidence_recipe.pretrain.steps,
                      rows = "", part = ""}
local nthreads = r1.set_threads(a.threads)
if a.stages == "" and a.exp ~= "balance" then error("--stages DIR: the models kept by train_builtin.lua --stages", 0) end
os.execute("mkdir -p '" .. a.out .. "'")

local Q = a.quick
local function pick(full, quick) if Q then return quick else return full end end
local N = pick(a.n, 2)
local wall0 = os.time()
local function say(fmt, ...)
  print(("[%5.0fs] " .. fmt):format(os.time() - wall0, ...))
  io.stdout:flush()
end

-- held-out evaluation (greedy, the SFT evaluator's problems): accuracy, format and the share of
-- off-language words in the reasoning
local function ev(m, tasks)
  local e = r1.evaluate{model = m, tasks = tasks, n = N}
  return {accuracy = e.accuracy, format = e.format, offlang = 1 - e.language,
          length = e.think_len}
end

local function write(name, text)
  common.write_atomic(a.out .. "/" .. name .. ".md", text .. "\n")
  print(text)
end

-- one GRPO run; stops after `steps` steps or `minutes` of wall time, whichever comes first;
-- returns the per-step statistics and the seconds it took
local function grpo(m, o)
  local t0, hist = os.clock(), {}
  local w0 = os.time()
  local args = {model = m, tasks = o.tasks, steps = o.steps, prompts = pick(a.prompts, 1),
    group = pick(a.group, 2), loss_type = a.loss_type, balance_gamma = a.gamma, max_new = o.max_new or 200, lr = o.lr or a.lr,
    temperature = a.temperature, beta = a.beta, eps_high = o.eps_high or 0.28, mu = a.mu,
    dynamic_sampling = (o.dynamic == nil and a.dynamic or o.dynamic) or false,
    seed = a.seed + (o.seed or 0), rewards = o.rewards,
    on_step = function(st)
      hist[#hist + 1] = st
      if st.step % 10 == 0 then
        say("%-9s step %3d reward %.3f accuracy %.2f format %.2f language %.2f length %.0f"
          .. " kl %.4f time %.1f/%.1f/%.1f s", o.name, st.step, st.reward, st.accuracy or 0,
          st.format or 0, st.language or 0, st.len_mean, st.kl or 0, st.t_sample or 0,
          st.t_score or 0, st.t_train or 0)
      end
      if o.minutes and os.time() - w0 >= o.minutes * 60 then return false end
    end}
  -- dynamic sampling refuses a batch whose every group scores alike (nothing to learn from):
  -- that ends the run where it is, as a stop, and the table says so
  local ok, last = pcall(r1.grpo, args)
  if not ok then
    local why = tostring(last):match("every sampled group had equal rewards[^;]*")
    if not why then error(last, 0) end
    last = {step = #hist, stopped = why}
  end
  if last and last.stopped then
    say("%-9s stopped after step %d: %s", o.name, last.step, last.stopped)
    hist.stopped = true
  end
  return hist, os.time() - w0, os.clock() - t0
end

local function mean(hist, key, from, to)
  local s, k = 0, 0
  for i = math.max(1, from), math.min(#hist, to) do
    s, k = s + (hist[i][key] or 0), k + 1
  end
  return k > 0 and s / k or 0
end

-- the mean of a list, and the distance between its extremes
local function avg(t) local x = 0 for _, v in ipairs(t) do x = x + v end return x / #t end
local function span(t)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(t) do lo, hi = math.min(lo, v), math.max(hi, v) end
  return hi - lo
end

local RULES = {"accuracy", "format", {"language", weight = 0.5}}
local HARD = "add:4"
-- the first edition's mixture (common.lua says why)
local TASKS = common.evidence_recipe.tasks

local exp = {}

function exp.harder()
  local m = r1.load(a.stages .. "/sft")
  local before = ev(m, HARD)
  local base = ev(m, "add:1-3")
  say("before: %s accuracy %.3f format %.3f", HARD, before.accuracy, before.format)
  local hist, secs = grpo(m, {name = "harder", tasks = {HARD}, rewards = RULES,
    steps = a.steps > 0 and a.steps or pick(1000, 2), minutes = pick(a.minutes, 0.05)})
  local after = ev(m, HARD)
  local base2 = ev(m, "add:1-3")
  write("harder", table.concat({
    ("GRPO from the cold-start SFT model on %s (held out, %d problems, greedy), %d steps of "
      .. "8 prompts x 8 completions (temperature %g, lr %g, mu %d, beta %g, balance gamma %g%s, "
      .. "seed %d) in %.1f minutes on %d thread%s:"):format(HARD, N, #hist, a.temperature, a.lr,
        a.mu, a.beta, a.gamma, a.dynamic and ", dynamic sampling" or "", a.seed, secs / 60, nthreads,
        nthreads == 1 and "" or "s"),
    "",
    "| | accuracy " .. HARD .. " | format " .. HARD .. " | accuracy add 1-3 | format add 1-3 |",
    "| --- | ---: | ---: | ---: | ---: |",
    ("| cold-start SFT | %.1f%% | %.1f%% | %.1f%% | %.1f%% |"):format(100 * before.accuracy,
      100 * before.format, 100 * base.accuracy, 100 * base.format),
    ("| + GRPO | %.1f%% | %.1f%% | %.1f%% | %.1f%% |"):format(100 * after.accuracy,
      100 * after.format, 100 * base2.accuracy, 100 * base2.format),
    "",
    ("Gain on %s: %+.1f points."):format(HARD, 100 * (after.accuracy - before.accuracy)),
  }, "\n"))
end

function exp.sampling()
  local steps = a.steps > 0 and a.steps or pick(30, 2)
  local rows = {"| clip-higher (eps_high) | dynamic sampling | accuracy " .. HARD
    .. " after | zero-variance groups | entropy (last 5 steps) | clip fraction | minutes |",
    "| ---: | :---: | ---: | ---: | ---: | ---: | ---: |"}
  local start = ev(r1.load(a.stages .. "/sft"), HARD)
  for _, v in ipairs{{0.2, false}, {0.28, false}, {0.2, true}, {0.28, true}} do
    local m = r1.load(a.stages .. "/sft")
    local hist, secs = grpo(m, {name = ("e%.2f%s"):format(v[1], v[2] and "+ds" or ""),
      tasks = {HARD}, rewards = RULES, steps = steps, eps_high = v[1], dynamic = v[2]})
    local after = ev(m, HARD)
    rows[#rows + 1] = ("| %.2f | %s | %.1f%% | %.2f | %.3f | %.4f | %.1f |"):format(v[1],
      v[2] and "yes" or "no", 100 * after.accuracy, mean(hist, "zero_var", 1, #hist),
      mean(hist, "entropy", #hist - 4, #hist), mean(hist, "clip_frac", 1, #hist), secs / 60)
  end
  write("sampling", ("%d GRPO steps (temperature %g, lr %g, mu %d) from the cold-start SFT "
    .. "model on %s (accuracy before: %.1f%%); held-out accuracy on %d problems:\n\n"):format(
    steps, a.temperature, a.lr, a.mu, HARD, 100 * start.accuracy, N) .. table.concat(rows, "\n"))
end

-- r1.pretrain on the built-in recipe's mixture with its settings; `over` replaces any of them
local function pretrain(m, over)
  local p = common.evidence_recipe.pretrain
  local o = {model = m, tasks = TASKS, steps = pick(p.steps, 2), batch = pick(p.batch, 2),
    seq_len = p.seq_len, lr = p.lr, min_lr = p.min_lr, warmup = p.warmup, seed = a.seed,
    eval_every = 0, eval_n = 1}
  for k, v in pairs(over) do o[k] = v end
  return r1.pretrain(o)
end

-- The base of the R1-Zero runs: the pretrained stage, or with --zero_plain P a base pretrained
-- like it (train_builtin's pretraining settings) on a corpus where a share P of the documents
-- are plain text without the chat format, so that the base rarely writes the format by itself
-- (kept in OUT/zero-base-P-Nsteps-seedS and reused)
local function zero_base()
  if a.zero_plain <= 0 then return a.stages .. "/pretrain" end
  -- named by everything that makes it, so that a --quick or other-seed base is never reused
  local steps = pick(a.zero_steps, 2)
  local dir = ("%s/zero-base-%g-%dsteps-seed%d%s"):format(a.out, a.zero_plain, steps, a.seed,
    Q and "-quick" or "")
  local f = io.open(dir .. "/config.json")
  if f then f:close() return dir end
  local m = r1.init("tiny", {seed = a.seed})
  pretrain(m, {steps = steps, plain_frac = a.zero_plain})
  os.execute("mkdir -p '" .. dir .. "'")
  m:save(dir)
  say("zero base pretrained with plain_frac %g: %s", a.zero_plain, dir)
  return dir
end

-- "R1-Zero" with and without the language reward: the same start, steps and seed
local function zero_run(name, rewards)
  local m = r1.load(zero_base())
  local before = ev(m, "add:1-3")
  local hist, secs = grpo(m, {name = name, tasks = {"add:1-3"}, rewards = rewards,
    steps = a.steps > 0 and a.steps or pick(60, 2)})
  return before, hist, secs, ev(m, "add:1-3")
end

-- "R1-Zero" (exp zero) and the language reward (exp lang) are one experiment: the same start,
-- steps and seed, once with accuracy + format (the language reward measured at weight 0) and
-- once with the language reward at weight 1
function exp.zero()
  local runs = {}
  for _, v in ipairs{{"accuracy + format", 0}, {"accuracy + format + language", 1}} do
    local before, hist, secs, after = zero_run(v[2] == 0 and "zero" or "zero+lang",
      {"accuracy", "format", {"language", weight = v[2]}})
    runs[#runs + 1] = {name = v[1], before = before, hist = hist, secs = secs, after = after}
  end
  local z = runs[1]
  local hist = z.hist
  local rows = {"| steps | format | accuracy | mean completion length (tokens) |",
                "| --- | ---: | ---: | ---: |"}
  local k = math.max(1, #hist // 6)
  for i = 1, #hist, k do
    local j = math.min(#hist, i + k - 1)
    rows[#rows + 1] = ("| %d-%d | %.2f | %.2f | %.1f |"):format(i, j, mean(hist, "format", i, j),
      mean(hist, "accuracy", i, j), mean(hist, "len_mean", i, j))
  end
  write("zero", table.concat({
    ("\"R1-Zero\": GRPO from the pretrained base with only the accuracy and format rewards "
      .. "(add, 1-3 digits), %d steps%s (temperature %g, lr %g) in %.1f minutes. During "
      .. "training (group means):"):format(#hist, hist.stopped and " (then every group sampled "
      .. "scored the same: nothing left to learn)" or "", a.temperature, a.lr, z.secs / 60),
    "", table.concat(rows, "\n"), "",
    ("Held out (%d problems per difficulty, greedy): format %.1f%% -> %.1f%%, accuracy "
      .. "%.1f%% -> %.1f%%, reasoning %.0f -> %.0f characters."):format(N,
      100 * z.before.format, 100 * z.after.format, 100 * z.before.accuracy,
      100 * z.after.accuracy, z.before.length, z.after.length),
  }, "\n"))
  rows = {"| rewards | steps | off-language words in training (last 10 steps) | off-language "
    .. "words held out | accuracy held out |", "| --- | ---: | ---: | ---: | ---: |"}
  for _, r in ipairs(runs) do
    rows[#rows + 1] = ("| %s | %d | %.1f%% | %.1f%% | %.1f%% |"):format(r.name, #r.hist,
      100 * (1 - mean(r.hist, "language", #r.hist - 9, #r.hist)), 100 * r.after.offlang,
      100 * r.after.accuracy)
  end
  write("lang", ("Language mixing under R1-Zero, the same start and seed with and without "
    .. "the language-consistency reward (the pretrained base: %.1f%% off-language words in its "
    .. "reasoning held out, where the question names the language to think in; a run with "
    .. "dynamic sampling stops early once every group scores the same):\n\n"):format(
    100 * z.before.offlang) .. table.concat(rows, "\n"))
end
exp.lang = exp.zero

-- the R1-Zero base alone (pretrained with --zero_plain, or the pretrained stage), evaluated
function exp.zerobase()
  local dir = zero_base()
  local e = ev(r1.load(dir), "add:1-3")
  write("zerobase", ("The R1-Zero base (%s), add 1-3 digits held out (%d problems per "
    .. "difficulty, greedy): format %.1f%%, accuracy %.1f%%, off-language words %.1f%%."):format(
    dir, N, 100 * e.format, 100 * e.accuracy, 100 * e.offlang))
end

function exp.distill()
  local cfg = {preset = "tiny"}
  for k, v in pairs(common.evidence_recipe.student) do cfg[k] = v end
  -- the student's base: pretrained like the teacher's, on the same documents
  local s0 = r1.init(cfg, {seed = a.seed + 10})
  pretrain(s0, {steps = pick(400, 2)})
  local basedir = a.out .. "/student-base"
  os.execute("mkdir -p '" .. basedir .. "'")
  s0:save(basedir)
  local base = ev(s0, "add:1-3")
  say("student base: accuracy %.3f format %.3f", base.accuracy, base.format)
  -- distillation: SFT (+ logit KD) on the teacher's verified samples; time includes sampling
  local w0 = os.time()
  local teacher = r1.load(a.stages .. "/rl2")
  -- the teacher's verified samples on what the student is measured on (add, 1 to 3 digits;
  -- the prompts cycle through the three difficulties)
  local data = os.tmpname()
  local rs = r1.reject_sample{model = teacher, tasks = {"add:1-3"}, prompts = pick(384, 3),
    k = 2, keep = 1, max_new = 200, temperature = 0.7, seed = a.seed + 7, out = data}
  local sd = r1.load(basedir)
  if rs.kept + rs.direct > 0 then
    r1.distill{student = sd, teacher = teacher, data = data, steps = pick(300, 2),
      batch = pick(16, 2), seq_len = 256, lr = 2e-3, min_lr = 2e-4, kd = 0.5, seed = a.seed}
  else
    say("distill: the teacher passed no sample")
  end
  os.remove(data)
  local secs = os.time() - w0
  local dist = ev(sd, "add:1-3")
  -- GRPO alone for the same wall time
  local sg = r1.load(basedir)
  local hist = grpo(sg, {name = "student", tasks = {"add:1-3"}, rewards = RULES,
    steps = 100000, minutes = secs / 60})
  local rl = ev(sg, "add:1-3")
  write("distill", table.concat({
    ("A dense student (%d parameters, the teacher has %d) from the same pretrained base, "
      .. "%.1f minutes each; held-out add 1-3 digits (%d problems per difficulty):"):format(
      sd:params().total, teacher:params().total, secs / 60, N),
    "",
    "| student | accuracy | format |",
    "| --- | ---: | ---: |",
    ("| pretrained base | %.1f%% | %.1f%% |"):format(100 * base.accuracy, 100 * base.format),
    ("| distilled (%d teacher samples kept of %d, SFT + logit KD) | %.1f%% | %.1f%% |"):format(
      rs.kept + rs.direct, rs.sampled, 100 * dist.accuracy, 100 * dist.format),
    ("| GRPO alone (%d steps) | %.1f%% | %.1f%% |"):format(#hist, 100 * rl.accuracy,
      100 * rl.format),
  }, "\n"))
end

-- Routing mismatch in RL: GRPO from the cold-start model with an fp8 sampler (the rollout
-- engine) and fp32 training, with and without routing replay (R3), beside an fp32 sampler;
-- --seeds seeds each, the same steps (so the same wall time: replay costs nothing extra)
function exp.mismatch()
  local steps = a.steps > 0 and a.steps or pick(40, 2)
  local settings = {{"fp32", false, "fp32 sampler"}, {"fp8", false, "fp8 sampler"},
                    {"fp8", true, "fp8 sampler + routing replay"}}
  local start = ev(r1.load(a.stages .. "/sft"), "add:1-3")
  local rows, nl = {}, 0
  for _, set in ipairs(settings) do
    local acc, flips, lpm, rw0, rw1, mins, layers = {}, {}, {}, {}, {}, 0, {}
    for seed = 1, pick(a.seeds, 1) do
      local m = r1.load(a.stages .. "/sft")
      local hist = {}
      local w0 = os.time()
      r1.grpo{model = m, tasks = {"add:1-3"}, rewards = RULES, steps = steps,
        prompts = pick(a.prompts, 1), group = pick(a.group, 2), max_new = 160, lr = a.lr,
        temperature = a.temperature, beta = a.beta, seed = seed, rollout_dtype = set[1],
        routing_replay = set[2], on_step = function(st) hist[#hist + 1] = st end}
      mins = mins + (os.time() - w0) / 60
      local e = ev(m, "add:1-3")
      acc[#acc + 1] = e.accuracy
      local f, n = {}, 0
      for _, st in ipairs(hist) do
        for j, v in ipairs(st.route_flip or {}) do f[j] = (f[j] or 0) + v / #hist end
      end
      for j, v in ipairs(f) do layers[j] = (layers[j] or 0) + v end
      nl = math.max(nl, #f)
      flips[#flips + 1] = mean(hist, "route_flip_mean", 1, #hist)
      lpm[#lpm + 1] = mean(hist, "logprob_mismatch", 1, #hist)
      rw0[#rw0 + 1] = mean(hist, "reward", 1, math.min(5, #hist))
      rw1[#rw1 + 1] = mean(hist, "reward", #hist - 4, #hist)
      say("%-28s seed %d: flips %.4f, lp mismatch %.5f, reward %.3f -> %.3f, accuracy %.3f",
        set[3], seed, flips[#flips], lpm[#lpm], rw0[#rw0], rw1[#rw1], e.accuracy)
    end
    local per = {}
    for j = 1, nl do per[j] = ("%.2f%%"):format(100 * (layers[j] or 0) / #acc) end
    rows[#rows + 1] = ("| %s | %s | %.2f%% | %.5f | %.3f → %.3f | %.1f%% (± %.1f) | %.1f |"):format(
      set[3], table.concat(per, " · "), 100 * avg(flips), avg(lpm), avg(rw0), avg(rw1),
      100 * avg(acc), 100 * span(acc) / 2, mins / #acc)
  end
  write("mismatch", table.concat({
    ("GRPO from the cold-start SFT model on add 1-3 digits, %d steps of %d prompts x %d "
      .. "(temperature %g, lr %g, beta %g), %d seed%s per row, training in fp32; held-out "
      .. "accuracy before: %.1f%% (%d problems per cell, greedy). Flips: the share of completion "
      .. "tokens whose experts in the training forward differ from the sampler's, per MoE layer "
      .. "and mean over the run; lp mismatch: mean |log p sampler - log p training|; ± is half "
      .. "the spread over the seeds."):format(steps, pick(a.prompts, 1), pick(a.group, 2),
      a.temperature, a.lr, a.beta, pick(a.seeds, 1), pick(a.seeds, 1) == 1 and "" or "s",
      100 * start.accuracy, N),
    "",
    "| rollout | flips per MoE layer | flips | lp mismatch | reward (first 5 → last 5 steps) "
      .. "| accuracy after | minutes |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    table.concat(rows, "\n"),
  }, "\n"))
end

-- Expert-load balancing in pretraining: the same initialisation and documents, balanced by
-- the routing bias (DeepSeek-V3's auxiliary-loss-free method), not at all, or by the
-- sequence-wise auxiliary loss; the next-token loss on the last tenth of the steps (fresh
-- documents every step, so it is a held-out loss) beside MaxVio over the same steps
function exp.balance()
  local steps = a.steps > 0 and a.steps or pick(common.evidence_recipe.pretrain.steps, 4)
  local settings = {
    {"routing bias, gamma 0.001 (auxiliary-loss-free)", {balance_gamma = 0.001}},
    {"none", {balance_gamma = 0}},
    {"auxiliary loss, alpha 0.003", {balance_gamma = 0, balance_alpha = 0.003}},
    {"auxiliary loss, alpha 0.03", {balance_gamma = 0, balance_alpha = 0.03}},
    {"routing bias, gamma 0.0001", {balance_gamma = 0.0001}},
  }
  local only = {}
  for r in tostring(a.rows):gmatch("[^,]+") do
    local i = math.tointeger(tonumber(r))
    if not i or not settings[i] then
      error(("--rows: %q is not a row number in 1..%d"):format(r, #settings), 0)
    end
    only[i] = true
  end
  local from = math.max(1, steps - math.max(1, steps // 10) + 1)
  local rows = {}
  for i, set in ipairs(settings) do
    if next(only) and not only[i] then goto continue end
    local m = r1.init("tiny", {seed = a.seed})
    local hist = {}
    local over = {steps = steps, on_step = function(st) hist[#hist + 1] = st end}
    for k, v in pairs(set[2]) do over[k] = v end
    local w0 = os.time()
    pretrain(m, over)
    local mins = (os.time() - w0) / 60
    local e = ev(m, "add:1-3")
    local per, nl = {}, #(hist[#hist].maxvio or {})
    for j = 1, nl do
      local s = 0
      for i = from, #hist do s = s + hist[i].maxvio[j] end
      per[j] = ("%.2f"):format(s / (#hist - from + 1))
    end
    local row = ("| %s | %.4f | %s | %.2f | %.2f | %.1f%% | %.1f |"):format(set[1],
      mean(hist, "loss_main", from, #hist), table.concat(per, " · "),
      mean(hist, "maxvio_mean", from, #hist), mean(hist, "maxvio_mean", 1, #hist),
      100 * e.accuracy, mins)
    say("%s", row)
    rows[#rows + 1] = row
    ::continue::
  end
  write("balance", table.concat({
    ("The first edition's pretraining (%d steps of %d x %d tokens, seed %d) from the same "
      .. "initialisation, balanced in several ways. Loss: the next-token cross-entropy over the last "
      .. "%d steps (every step reads fresh documents, so this is a held-out loss); MaxVio: "
      .. "max load / mean load - 1 of each MoE layer's routed slots per step, over the same "
      .. "steps, and its mean over the whole run; accuracy: the base on held-out add 1-3 "
      .. "digits (%d problems per difficulty, greedy)."):format(steps,
      pick(common.evidence_recipe.pretrain.batch, 2), common.evidence_recipe.pretrain.seq_len,
      a.seed,
      steps - from + 1, N),
    "",
    "| balancing | loss | MaxVio per MoE layer | MaxVio | MaxVio, whole run | accuracy | minutes |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    table.concat(rows, "\n"),
  }, "\n"))
end

-- MTP through post-training: does the MTP module keep up with a policy that RL moves?  GRPO
-- as train_builtin.lua's first RL stage runs it, from the cold-start model, with and without
-- the MTP loss on the completions; acceptance of the MTP module's greedy drafts on held-out
-- greedy completions (r1.evaluate's mtp_accept), before and after
function exp.mtp()
  local steps = a.steps > 0 and a.steps or pick(40, 2)
  local function measure(m)
    local e = r1.evaluate{model = m, tasks = "add:1-4", n = N}
    return e.mtp_accept and e.mtp_accept[1] or 0, e.accuracy, e.mtp_drafts and e.mtp_drafts[1] or 0
  end
  local acc0, a0, drafts0 = measure(r1.load(a.stages .. "/sft"))
  say("cold-start SFT: MTP acceptance %.4f (%d drafts), accuracy %.3f", acc0, drafts0, a0)
  local rows = {}
  for _, set in ipairs{{0.1, "GRPO with the MTP loss (mtp_lambda 0.1)"},
                       {0, "GRPO without it (mtp_lambda 0)"}} do
    local accs, accu, mins, losses = {}, {}, 0, {}
    for seed = 1, pick(a.seeds, 1) do
      local m = r1.load(a.stages .. "/sft")
      local hist = {}
      local w0 = os.time()
      r1.grpo{model = m, tasks = {"add:2-4"}, rewards = RULES, steps = steps,
        prompts = pick(8, 1), group = pick(8, 2), max_new = 192, lr = 1e-4, beta = 0.04,
        eps_high = 0.28, seed = seed, mtp_lambda = set[1],
        on_step = function(st) hist[#hist + 1] = st end}
      mins = mins + (os.time() - w0) / 60
      local acc, accuracy = measure(m)
      accs[#accs + 1], accu[#accu + 1] = acc, accuracy
      losses[#losses + 1] = mean(hist, "mtp_loss", #hist - 4, #hist)
      say("%-42s seed %d: MTP acceptance %.4f, accuracy %.3f, MTP loss %.3f", set[2], seed, acc,
        accuracy, losses[#losses])
    end
    rows[#rows + 1] = ("| %s | %.2f%% (± %.2f) | %.1f%% (± %.1f) | %s | %.1f |"):format(set[2],
      100 * avg(accs), 100 * span(accs) / 2, 100 * avg(accu), 100 * span(accu) / 2,
      set[1] > 0 and ("%.3f"):format(avg(losses)) or "-", mins / #accs)
  end
  write("mtp", table.concat({
    ("GRPO from the cold-start SFT model as the built-in recipe's first RL stage runs it (add 2-4 "
      .. "digits, %d steps of %d prompts x %d, lr 1e-4, beta 0.04, clip-higher 0.28), %d seed%s "
      .. "per row. MTP acceptance: the share of the MTP module's greedy drafts that greedy "
      .. "speculative decoding accepts, on the held-out greedy completions of add 1-4 digits "
      .. "(%d problems per difficulty); before RL: %.2f%% of %d drafts, accuracy %.1f%%. ± is "
      .. "half the spread over the seeds; MTP loss: its cross-entropy on the sampled "
      .. "completions over the last 5 steps."):format(steps, pick(8, 1), pick(8, 2),
      pick(a.seeds, 1), pick(a.seeds, 1) == 1 and "" or "s", N, 100 * acc0, drafts0, 100 * a0),
    "",
    "| post-training | MTP acceptance after | accuracy after | MTP loss | minutes |",
    "| --- | ---: | ---: | ---: | ---: |",
    table.concat(rows, "\n"),
  }, "\n"))
end

-- ------------------------------------------------------------------ the GRPO family

-- "Aha": a completion counts when its reasoning (the text before </think>) holds one of these
-- words whole, in any case: the English self-verification words and their Spanish
-- counterparts (the tasks ask in both languages)
local AHA = {"check", "checks", "checking", "recheck", "verify", "verifying", "wait",
             "comprobar", "compruebo", "comprobamos", "verificar", "verifico", "espera"}
local function aha(text)
  local think = (text:match("^(.-)</think>") or text):lower()
  for _, w in ipairs(AHA) do
    if think:find("%f[%a]" .. w .. "%f[%A]") then return 1 end
  end
  return 0
end

-- The family's runs share one budget: a start model, a task, the same steps of 8 prompts x 8
-- completions, mu 2 (two updates per batch, so that the ratio moves and the losses differ at
-- all: with mu 1 every ratio is 1 and GRPO, GSPO and CISPO take the same step), lr 3e-5,
-- temperature 0.7, the routing bias frozen (gamma 0), no KL term unless the cell says so.
-- Every finished run is kept as OUT/cells/EXP.CELL.SEED.lua, so an interrupted or split run
-- (--part K/N: the runs whose number is K modulo N, for N processes side by side) resumes, and
-- the table is written once every run is in.
local BUDGET = {prompts = 8, group = 8, mu = 2, lr = 3e-5, temperature = 0.7, balance_gamma = 0,
                beta = 0, max_new = 200}

local function cellfile(ename, id, seed)
  return ("%s/cells/%s.%s.%d.lua"):format(a.out, ename, id, seed)
end

local function serialize(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    out[#out + 1] = ("  %s = %s,"):format(k, type(v) == "string" and ("%q"):format(v)
      or ("%.17g"):format(v))
  end
  return "return {\n" .. table.concat(out, "\n") .. "\n}\n"
end

-- One run of cell c (id, start = "sft" | "pretrain", task, opts) with seed; its result table.
local function run_cell(ename, c, seed, steps)
  local path = cellfile(ename, c.id, seed)
  local f = io.open(path)
  if f then f:close() return dofile(path) end
  local m = r1.load(a.stages .. "/" .. c.start)
  local hist, cur, aha0, aha1 = {}, {n = 0, k = 0}, nil, 0
  local o = {model = m, tasks = {c.task}, steps = steps, seed = seed,
    prompts = pick(BUDGET.prompts, 1), group = pick(BUDGET.group, 2),
    rewards = c.rewards or {"accuracy", "format"},
    on_group = function(g)
      for _, x in ipairs(g.completions) do cur.n, cur.k = cur.n + 1, cur.k + aha(x.text) end
    end,
    on_step = function(st)
      hist[#hist + 1] = st
      local share = cur.n > 0 and cur.k / cur.n or 0
      if not aha0 then aha0 = share end
      aha1, cur = share, {n = 0, k = 0}
      if st.step % 5 == 0 then
        say("%s %-24s seed %d step %3d reward %.3f accuracy %.2f clip %.4f kl %.4f", ename,
          c.id, seed, st.step, st.reward, st.accuracy or 0, st.clip_frac or 0, st.kl or 0)
      end
    end}
  for k, v in pairs(BUDGET) do if o[k] == nil then o[k] = v end end
  for k, v in pairs(c.opts or {}) do o[k] = v end
  local w0 = os.time()
  -- a first step whose every group scores the same (dynamic sampling on a model that never or
  -- always solves the task) leaves the model as it was: the run counts with 0 steps
  local ok, why = pcall(r1.grpo, o)
  if not ok then
    if not tostring(why):find("equal rewards", 1, true) then error(why, 0) end
    say("%s %-24s seed %d: no step (%s)", ename, c.id, seed, tostring(why):gsub("\n.*", ""))
  end
  local e = ev(m, c.task)
  local res = {accuracy = e.accuracy, format = e.format, steps = #hist,
    minutes = (os.time() - w0) / 60, clip = mean(hist, "clip_frac", 1, #hist),
    kl = mean(hist, "kl", #hist - 4, #hist), reward0 = mean(hist, "reward", 1, 3),
    reward1 = mean(hist, "reward", #hist - 2, #hist),
    sample0 = mean(hist, "accuracy", 1, 3), sample1 = mean(hist, "accuracy", #hist - 2, #hist),
    aha0 = aha0 or 0, aha1 = aha1}
  os.execute("mkdir -p '" .. a.out .. "/cells'")
  common.write_atomic(path, serialize(res))
  say("%s %-24s seed %d: accuracy %.3f, clip %.4f, aha %.3f -> %.3f, %.1f min", ename, c.id,
    seed, res.accuracy, res.clip, res.aha0, res.aha1, res.minutes)
  return res
end

-- Runs (this part of) every cell x seed; returns the cells' results (seed lists) when all are
-- in, else nil.
local function run_cells(ename, cells, steps)
  local K, P = 1, 1
  if a.part ~= "" then
    K, P = tostring(a.part):match("^(%d+)/(%d+)$")
    K, P = tonumber(K), tonumber(P)
    if not K or K < 1 or K > P then error("--part K/N, with 1 <= K <= N", 0) end
  end
  local seeds, i = pick(a.seeds, 1), 0
  for s = 1, seeds do
    for _, c in ipairs(cells) do
      i = i + 1
      if (i - 1) % P == K - 1 then run_cell(ename, c, s, steps) end
    end
  end
  local out = {}
  for _, c in ipairs(cells) do
    out[c.id] = {}
    for s = 1, seeds do
      local path = cellfile(ename, c.id, s)
      local f = io.open(path)
      if not f then
        say("%s: waiting for %s (another part runs it)", ename, path)
        return nil
      end
      f:close()
      out[c.id][s] = dofile(path)
    end
  end
  return out
end

local function field(runs, k)
  local t = {}
  for _, r in ipairs(runs) do t[#t + 1] = r[k] end
  return t
end

-- the held-out problems behind an accuracy on task (N per difficulty: "add:1-3" is 3 N)
local function problems(task)
  local lo, hi = tostring(task):match(":(%d+)-(%d+)$")
  return lo and (tonumber(hi) - tonumber(lo) + 1) * N or N
end

-- 95% half-width of an accuracy p measured on n held-out problems (the sample-size noise of
-- one run's figure)
local function band(p, n) return 1.96 * math.sqrt(math.max(p * (1 - p), 1e-9) / n) end

local function pct_cell(runs, task)
  local acc = field(runs, "accuracy")
  local vals = {}
  for _, v in ipairs(acc) do vals[#vals + 1] = ("%.1f"):format(100 * v) end
  return ("%.1f%% ± %.1f (%s)"):format(100 * avg(acc), 100 * band(avg(acc), problems(task)),
    table.concat(vals, ", "))
end

local START = {} -- held-out accuracy of a start model on a task, measured once
local function start_acc(start, task)
  local key = start .. " " .. task
  if not START[key] then START[key] = ev(r1.load(a.stages .. "/" .. start), task) end
  return START[key]
end

local FAMILY = {
  {id = "grpo", name = "GRPO", opts = {loss_type = "grpo"},
   what = "loss_type grpo, eps 0.2"},
  {id = "dapo", name = "DAPO", opts = {loss_type = "dapo", eps_high = 0.28,
   dynamic_sampling = true}, what = "loss_type dapo, eps_high 0.28, dynamic sampling"},
  {id = "dr_grpo", name = "Dr. GRPO", opts = {loss_type = "dr_grpo", std_scale = false},
   what = "loss_type dr_grpo, std_scale false"},
  {id = "gspo", name = "GSPO", opts = {importance_sampling_level = "sequence", eps_low = 3e-4,
   eps_high = 4e-4}, what = "importance_sampling_level sequence, eps 3e-4 / 4e-4"},
  {id = "cispo", name = "CISPO", opts = {loss_type = "cispo", eps_high = 5},
   what = "loss_type cispo, eps_high (the cap) 5"},
}

-- GRPO vs its family from the cold-start model on 4-digit sums
function exp.family()
  local steps = a.steps > 0 and a.steps or pick(16, 1)
  local cells = {}
  for _, f in ipairs(FAMILY) do
    cells[#cells + 1] = {id = f.id, start = "sft", task = HARD, opts = f.opts}
  end
  local res = run_cells("family", cells, steps)
  if not res then return end
  local before = start_acc("sft", HARD)
  local rows = {}
  for _, f in ipairs(FAMILY) do
    local r = res[f.id]
    rows[#rows + 1] = ("| %s | %s | %s | %.4f | %.1f |"):format(f.name, f.what, pct_cell(r, HARD),
      avg(field(r, "clip")), avg(field(r, "minutes")))
  end
  write("family", table.concat({
    ("The policy losses from the cold-start SFT model on %s, %d steps of %d prompts x %d "
      .. "each, mu %d, lr %g, temperature %g, no KL term, routing bias frozen, %d seeds per "
      .. "row; held-out accuracy (%d problems, greedy) before: %.1f%%. Accuracy: the mean over "
      .. "the seeds ± the 95%% half-width of one run's figure on %d problems, then each seed's; "
      .. "clip fraction: the share of tokens whose clipped branch won (CISPO: whose weight hit "
      .. "the cap), mean over the steps."):format(HARD, steps, pick(BUDGET.prompts, 1),
      pick(BUDGET.group, 2), BUDGET.mu, BUDGET.lr, BUDGET.temperature, pick(a.seeds, 1), N,
      100 * before.accuracy, N),
    "",
    "| loss | settings | accuracy after | clip fraction | minutes per run |",
    "| --- | --- | ---: | ---: | ---: |",
    table.concat(rows, "\n"),
  }, "\n"))
end

-- The KL term over a longer run: GRPO with beta 0.04 (DeepSeekMath's) against beta 0
function exp.kl()
  local steps = a.steps > 0 and a.steps or pick(40, 2)
  local cells = {{id = "beta0.04", start = "sft", task = HARD, opts = {beta = 0.04}},
                 {id = "beta0", start = "sft", task = HARD, opts = {beta = 0}}}
  local res = run_cells("kl", cells, steps)
  if not res then return end
  local before = start_acc("sft", HARD)
  local rows = {}
  for _, c in ipairs(cells) do
    local r = res[c.id]
    rows[#rows + 1] = ("| %s | %s | %.3f → %.3f | %.5f | %.1f |"):format(
      c.opts.beta > 0 and "β 0.04 (k3 KL to the start model)" or "β 0 (no KL term)",
      pct_cell(r, HARD), avg(field(r, "sample0")), avg(field(r, "sample1")), avg(field(r, "kl")),
      avg(field(r, "minutes")))
  end
  write("kl", table.concat({
    ("GRPO (loss_type grpo) from the cold-start SFT model on %s for %d steps, the family's "
      .. "budget otherwise, %d seeds per row; held-out accuracy before: %.1f%%. Sample accuracy: "
      .. "the share of right completions among the sampled ones over the first and the last 3 "
      .. "steps; KL: the mean k3 to the reference over the last 5 steps."):format(HARD, steps,
      pick(a.seeds, 1), 100 * before.accuracy),
    "",
    "| KL term | accuracy after | sample accuracy | KL at the end | minutes per run |",
    "| --- | ---: | ---: | ---: | ---: |",
    table.concat(rows, "\n"),
  }, "\n"))
end

local CONTROLS = {
  {id = "correct", name = "correct (accuracy)", rewards = {"accuracy"}},
  {id = "random", name = "random", rewards = {"random", {"accuracy", weight = 0}}},
  {id = "incorrect", name = "incorrect", rewards = {"incorrect", {"accuracy", weight = 0}}},
  {id = "format_only", name = "format only", rewards = {"format_only", {"accuracy", weight = 0}}},
}
local STARTS = {{start = "sft", task = HARD, name = "cold-start SFT, add 4 digits"},
                {start = "pretrain", task = "add:1-3", name = "R1-Zero base, add 1-3 digits"}}

-- The Spurious Rewards controls, from the cold-start model and from the R1-Zero base; the
-- "aha" share of every run at its first and last step
function exp.controls()
  local steps = a.steps > 0 and a.steps or pick(12, 1)
  local cells = {}
  for _, st in ipairs(STARTS) do
    for _, c in ipairs(CONTROLS) do
      cells[#cells + 1] = {id = st.start .. "-" .. c.id, start = st.start, task = st.task,
                           rewards = c.rewards}
    end
  end
  local res = run_cells("controls", cells, steps)
  if not res then return end
  local rows, ahas = {}, {}
  for _, st in ipairs(STARTS) do
    local before = start_acc(st.start, st.task)
    for _, c in ipairs(CONTROLS) do
      local r = res[st.start .. "-" .. c.id]
      local d = avg(field(r, "accuracy")) - before.accuracy
      rows[#rows + 1] = ("| %s | %s | %.1f%% | %s | %+.1f | %.3f → %.3f | %.4f | %.1f |"):format(
        st.name, c.name, 100 * before.accuracy, pct_cell(r, st.task), 100 * d,
        avg(field(r, "sample0")),
        avg(field(r, "sample1")), avg(field(r, "clip")), avg(field(r, "minutes")))
      ahas[#ahas + 1] = ("| %s | %s | %.1f%% | %.1f%% |"):format(st.name, c.name,
        100 * avg(field(r, "aha0")), 100 * avg(field(r, "aha1")))
    end
  end
  write("controls", table.concat({
    ("GRPO with each reward alone, from two starts, %d steps of the family's budget (mu %d, so "
      .. "that clipping can act), %d seeds per row; held-out accuracy (%d problems per "
      .. "difficulty, greedy) before and after (mean ± the 95%% half-width of one run's figure "
      .. "on its problems, then each seed's); sample accuracy: right completions among the "
      .. "sampled ones over the first and last 3 steps (the accuracy reward rides along with weight 0 where it "
      .. "is not the reward); clip fraction: mean over the steps."):format(steps, BUDGET.mu,
      pick(a.seeds, 1), N),
    "",
    "| start | reward | accuracy before | accuracy after | change | sample accuracy | clip "
      .. "fraction | minutes per run |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    table.concat(rows, "\n"),
  }, "\n"))
  write("aha", table.concat({
    ("The share of sampled completions whose reasoning holds a self-verification word (%s; "
      .. "whole words, any case), over the first step's and the last step's 64 samples of "
      .. "the same runs, mean over the seeds."):format(table.concat(AHA, ", ")),
    "",
    "| start | reward | first step | last step |",
    "| --- | --- | ---: | ---: |",
    table.concat(ahas, "\n"),
  }, "\n"))
end

local f = exp[a.exp]
if not f then
  error("--exp: expected harder, sampling, zero, lang, zerobase, distill, mismatch, balance, "
        .. "mtp, family, kl or controls, got " .. a.exp, 0)
end
f()
say("done")
