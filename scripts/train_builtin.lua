-- train_builtin.lua — trains r1lab's built-in model through the DeepSeek-R1 recipe, in
-- miniature, with fixed seeds:
--   1. pretraining (next token + MTP) on worked solutions in two languages, some mixed
--   2. cold-start SFT on clean worked solutions, loss on the assistant tokens
--   3. GRPO with the rule rewards: accuracy, format, language consistency
--   4. rejection sampling of the GRPO model, then SFT on what passed the filters
--   5. a second RL stage: reasoning prompts and general requests, rule + preference rewards
--   6. distillation of the result into a small dense student (models/builtin-student)
-- and writes the model (BF16), its tokenizer and a card.md with the evaluation table.
--
--   r1lab run scripts/train_builtin.lua [--out models/builtin] [--quick true] [--seed 1]
--   r1lab run scripts/train_builtin.lua --card models/builtin
--
-- --stages DIR also keeps the model after each stage (DIR/pretrain, DIR/sft, DIR/grpo, ...), for
-- experiments that start from one of them (scripts/evidence.lua).
-- --card DIR only evaluates the saved model in DIR (and DIR-student) again and rewrites its
-- card.md and eval.json, keeping the training time and machine the card recorded.
-- --quick runs every stage for a few steps (for the tests); the defaults are the recipe of the
-- committed model (about 25-30 minutes on 2 cores).
local r1 = require "r1"
local common = require "common"
local a = common.args{out = common.datadir() .. "/models/builtin", quick = false, seed = 1,
                      threads = 0, stages = "", card = ""}
r1.set_threads(a.threads)

local Q = a.quick
local function pick(full, quick) if Q then return quick else return full end end

-- the recipe
-- Addition up to 3 digits is the core skill; 4 digits is seen a little, so that RL has room.
local TASKS = common.recipe.tasks
local EVAL = "add:1-5,mul:1-3,linear:1-2,bool:1-2,chat:1-2"
local P = common.recipe.pretrain
local R = {
  pretrain = {steps = pick(P.steps, 2), batch = pick(P.batch, 2), seq_len = P.seq_len,
              lr = P.lr, min_lr = P.min_lr, warmup = P.warmup},
  sft = {steps = pick(350, 2), batch = pick(16, 2), seq_len = 256, lr = 1.5e-3, min_lr = 1e-4,
         warmup = 20, sft_docs = 0},
  grpo = {steps = pick(40, 1), prompts = pick(8, 1), group = pick(8, 2), max_new = 192,
          lr = 1e-4, beta = 0.04, eps_high = 0.28, tasks = {"add:2-4"}},
  reject = {prompts = pick(128, 4), k = 4, keep = 1, max_new = 192},
  rsft = {steps = pick(60, 2), batch = pick(8, 2), seq_len = 256, lr = 1e-4, min_lr = 1e-5},
  rl2 = {steps = pick(20, 1), prompts = pick(8, 1), group = pick(8, 2), max_new = 192,
         lr = 5e-5, beta = 0.04, tasks = {"add:1-4", "mul:1-2", "chat:1-2"}},
  student = common.recipe.student,
  distill = {steps = pick(300, 2), batch = pick(16, 2), seq_len = 256, lr = 2e-3,
             min_lr = 2e-4, kd = 0.5},
}

local t0 = os.clock()
local wall0 = os.time()
local function stage(name, fmt, ...)
  print(("[%5.0fs] %-9s " .. fmt):format(os.time() - wall0, name, ...))
  io.stdout:flush()
end

local function summary(e)
  return ("accuracy %.2f (trained %.2f, harder %.2f), format %.2f, language %.2f, "
    .. "reasoning %.0f chars"):format(e.accuracy, e.accuracy_in, e.accuracy_above, e.format,
    e.language, e.think_len)
end

-- the card: the saved (BF16) models evaluated on held-out problems of every task and
-- difficulty ("trained on": the difficulties in TASKS), and the fixed check the test suite
-- repeats
local function table_of(e)
  local lines = {"| task | difficulty | trained on | accuracy | format | language | reasoning |",
                 "| --- | ---: | :---: | ---: | ---: | ---: | ---: |"}
  for _, c in ipairs(e.cells) do
    lines[#lines + 1] = ("| %s | %d | %s | %.2f | %.2f | %.2f | %.0f |"):format(c.task,
      c.difficulty, c.in_training and "yes" or "no", c.accuracy, c.format, c.language,
      c.think_len)
  end
  return table.concat(lines, "\n")
end

-- "CPU (its extensions), OpenBLAS ... kernels, N threads": what the last bits depend on
local function machine_line()
  local mc = r1.machine()
  return ("%s (%s), %s, bf16 products %s, %d thread%s"):format(mc.cpu, mc.isa, mc.blas,
    mc.kernels, mc.threads, mc.threads == 1 and "" or "s")
end

-- MTP acceptance after each stage: the share of the MTP module's greedy drafts that greedy
-- speculative decoding accepts on held-out greedy completions (r1.evaluate's mtp_accept)
local accept_rows = {}
local function accept_row(what, e)
  return ("| %s | %.2f%% | %d |"):format(what, 100 * (e.mtp_accept and e.mtp_accept[1] or 0),
    e.mtp_drafts and e.mtp_drafts[1] or 0)
end

local function write_card(dir, student_dir, minutes, trained_on)
  local saved = r1.load(dir)
  local fixed = r1.evaluate{model = saved, tasks = "add:1-3", n = 8, trained = TASKS}
  common.write_atomic(dir .. "/eval.json",
    ('{"tasks": "add:1-3", "n": 8, "accuracy": %.6f, "format": %.6f, "language": %.6f}\n')
    :format(fixed.accuracy, fixed.format, fixed.language))
  stage("check", "saved model on add:1-3 (8 each): %s", summary(fixed))
  local n = pick(16, 1)
  local final = r1.evaluate{model = saved, tasks = EVAL, n = n, trained = TASKS}
  local st = r1.load(student_dir)
  local se = r1.evaluate{model = st, tasks = EVAL, n = n, trained = TASKS}
  local tab = table_of(final)
  stage("eval", "the saved model: %s", summary(final))
  print(tab)
  stage("eval", "the student: %s", summary(se))
  local rows = {}
  for _, r in ipairs(accept_rows) do rows[#rows + 1] = r end
  rows[#rows + 1] = accept_row("the saved model (BF16)",
                               r1.evaluate{model = saved, tasks = TASKS, n = pick(8, 1)})
  common.write_atomic(dir .. "/card.md", ([[
# r1lab built-in model

A miniature DeepSeek-V3 (the `tiny` preset: hidden 192, 6 layers with the first dense, MLA,
16 routed experts + 1 shared, top-4, one MTP module; %d parameters) trained by
`scripts/train_builtin.lua` through the DeepSeek-R1 recipe: pretraining, cold-start SFT, GRPO
(accuracy, format, language consistency), rejection sampling + SFT, and a second RL stage with
preference rewards (helpfulness, harmlessness). Weights in BF16.

Made with: `r1lab run scripts/train_builtin.lua --seed %d` (%.0f minutes on 2 CPU cores).
Trained on: %s.
Evaluated on: %s.

## Evaluation

Greedy decoding of the saved weights on held-out problems (%d per cell); "trained on" marks
the difficulties the recipe trains on (`%s`), "reasoning" is the mean length of the think block
in characters. Overall: %s.

%s

The distilled dense student in `models/builtin-student` (%d parameters, no experts, no MTP):
%s.

## MTP acceptance

How often greedy speculative decoding would accept the MTP module's draft of the token after
next (draft position 1; the tiny preset has one MTP depth), on the greedy completions of
held-out problems of the training tasks (%d per cell), after each stage of the recipe. The
MTP loss trains the module in pretraining and SFT (weight 0.3) and in both GRPO stages on the
sampled completions (0.1).

| model | acceptance | drafts |
| --- | ---: | ---: |
%s
]]):format(saved:params().total, a.seed, minutes, trained_on, machine_line(), n, TASKS,
    summary(final), tab,
    st:params().total, summary(se), pick(8, 1), table.concat(rows, "\n")))
end

local function student_of(dir)
  local s = dir:gsub("builtin$", "builtin-student")
  if s == dir then s = dir .. "-student" end
  return s
end

if a.card ~= "" then
  local f = io.open(a.card .. "/card.md")
  local old = f and f:read("a") or ""
  if f then f:close() end
  local minutes = tonumber(old:match("%((%d+) minutes on")) or 0
  for row in old:gmatch("\n(| after [^\n]*)") do accept_rows[#accept_rows + 1] = row end
  write_card(a.card, student_of(a.card), minutes,
             old:match("\nTrained on: (.-)%.\n") or "not recorded (made before cards said)")
  return
end

local m = r1.init("tiny", {seed = a.seed})
stage("init", "%s", tostring(m))

-- the stage's evaluation on the training tasks, its MTP acceptance kept for the card
local function stage_eval(what)
  local e = r1.evaluate{model = m, tasks = TASKS, n = pick(8, 1)}
  accept_rows[#accept_rows + 1] = accept_row("after " .. what, e)
  return e
end

local function keep(name)
  if a.stages == "" then return end
  local dir = a.stages .. "/" .. name
  os.execute("mkdir -p '" .. dir .. "'")
  m:save(dir)
end

-- 1. pretraining
local p = R.pretrain
local res = r1.pretrain{model = m, tasks = TASKS, steps = p.steps, batch = p.batch,
  seq_len = p.seq_len, lr = p.lr, min_lr = p.min_lr, warmup = p.warmup, seed = a.seed,
  eval_every = 0, eval_n = pick(8, 1),
  on_step = function(s)
    if s.step % 50 == 0 then stage("pretrain", "step %d/%d loss %.3f", s.step, s.steps, s.loss) end
  end}
stage("pretrain", "done: %s", summary(stage_eval("pretraining")))
keep("pretrain")

-- 2. cold-start SFT
local s = R.sft
res = r1.sft{model = m, tasks = TASKS, steps = s.steps, batch = s.batch, seq_len = s.seq_len,
  lr = s.lr, min_lr = s.min_lr, warmup = s.warmup, sft_docs = s.sft_docs, seed = a.seed + 1,
  eval_every = 0, eval_n = pick(8, 1),
  on_step = function(st)
    if st.step % 50 == 0 then stage("sft", "step %d/%d loss %.3f", st.step, st.steps, st.loss) end
  end}
stage("sft", "done: %s", summary(stage_eval("cold-start SFT")))
keep("sft")

-- 3. GRPO with the rule rewards
local g = R.grpo
r1.grpo{model = m, tasks = g.tasks, steps = g.steps, prompts = g.prompts,
  group = g.group, max_new = g.max_new, lr = g.lr, beta = g.beta, eps_high = g.eps_high,
  seed = a.seed + 2, rewards = {"accuracy", "format", {"language", weight = 0.5}},
  on_step = function(st)
    if st.step % 10 == 0 or Q then
      stage("grpo", "step %d reward %.3f accuracy %.2f format %.2f language %.2f length %.0f",
        st.step, st.reward, st.accuracy, st.format, st.language, st.len_mean)
    end
  end}
stage("grpo", "done: %s", summary(stage_eval("GRPO")))
keep("grpo")

-- 4. rejection sampling + SFT on what passed
local samples = os.tmpname()
local rj = R.reject
local rs = r1.reject_sample{model = m, tasks = {"add", "mul", "linear", "bool"},
  prompts = rj.prompts, k = rj.k, keep = rj.keep, max_new = rj.max_new,
  temperature = 0.8, seed = a.seed + 3, out = samples}
stage("reject", "kept %d of %d samples (%d correct), plus %d direct answers", rs.kept,
  rs.sampled, rs.correct, rs.direct)
local rf = R.rsft
if rs.kept + rs.direct > 0 then
  r1.sft{model = m, data = samples, steps = rf.steps, batch = rf.batch, seq_len = rf.seq_len,
    lr = rf.lr, min_lr = rf.min_lr, seed = a.seed + 4}
  stage("rs-sft", "done: %s", summary(stage_eval("rejection sampling + SFT")))
  keep("rs-sft")
else
  stage("rs-sft", "skipped: no sample passed the filters")
end

-- 5. the second RL stage: reasoning and general requests, rule and preference rewards
local q = R.rl2
r1.grpo{model = m, tasks = q.tasks, steps = q.steps, prompts = q.prompts,
  group = q.group, max_new = q.max_new, lr = q.lr, beta = q.beta, seed = a.seed + 5,
  rewards = {"accuracy", "format", {"language", weight = 0.5}, "helpfulness", "harmlessness"},
  on_step = function(st)
    if st.step % 10 == 0 or Q then
      stage("rl2", "step %d reward %.3f accuracy %.2f harmlessness %.2f", st.step, st.reward,
        st.accuracy, st.harmlessness)
    end
  end}
stage("rl2", "done: %s", summary(stage_eval("the second RL stage")))
keep("rl2")

-- save the model: BF16 weights, the tokenizer, and its card
os.execute("mkdir -p '" .. a.out .. "'")
m:save(a.out, {dtype = "bf16"})

-- 6. distillation into a small dense student, from the final model's own filtered samples
local student_dir = student_of(a.out)
local st_cfg = {preset = "tiny"}
for k, v in pairs(R.student) do st_cfg[k] = v end
local student = r1.init(st_cfg, {seed = a.seed + 6})
local more = os.tmpname()
rs = r1.reject_sample{model = m, tasks = {"add", "mul", "linear", "bool"},
  prompts = pick(384, 4), k = 2, keep = 1, max_new = 192, temperature = 0.7,
  seed = a.seed + 7, out = more}
local d = R.distill
if rs.kept + rs.direct > 0 then
  r1.distill{student = student, teacher = m, data = more, steps = d.steps, batch = d.batch,
    seq_len = d.seq_len, lr = d.lr, min_lr = d.min_lr, kd = d.kd, seed = a.seed + 8}
else
  stage("distill", "skipped: the teacher passed no sample")
end
stage("distill", "student (%d parameters) trained", student:params().total)
os.execute("mkdir -p '" .. student_dir .. "'")
student:save(student_dir, {dtype = "bf16"})
os.remove(samples)
os.remove(more)

write_card(a.out, student_dir, (os.time() - wall0) / 60, machine_line())
stage("done", "%s written (%.0f CPU seconds)", a.out, os.clock() - t0)
