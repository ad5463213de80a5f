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
-- card.md and eval.json from the run's record (DIR/stages.jsonl: every stage's evaluation and
-- the pretraining frontier), keeping the training time and machine the card recorded.
-- --quick runs every stage for a few steps (for the tests); the defaults are the recipe of the
-- committed model (about 90 minutes on 2 cores).
local r1 = require "r1"
local common = require "common"
local a = common.args{out = common.datadir() .. "/models/builtin", quick = false, seed = 1,
                      threads = 0, stages = "", card = ""}
r1.set_threads(a.threads)

local Q = a.quick
local function pick(full, quick) if Q then return quick else return full end end

-- the recipe (second edition: every task, both phrasings, DAPO's GRPO; see common.recipe)
local TASKS = common.recipe.tasks
-- the card's cells: every (task, difficulty) the issue of this edition sets a target for
local EVAL = "add:1-4,mul:1-3,linear:1-2,bool:1-2,sort:1-3,countdown:1,chat:1-2"
-- the targets (held-out accuracy, greedy); the card marks every cell that misses its own
local TARGET = {add = {0.97, 0.97, 0.97, 0.90}, mul = {0.99, 0.90, 0.60}, linear = {0.90, 0.70},
                bool = {0.95, 0.95}, sort = {0.90, 0.90, 0.90}, countdown = {0.60},
                chat = {0.90, 0.90}}
local TYPED = 0.3 -- share of questions phrased as people type them, in every stage
local P = common.recipe.pretrain
-- GRPO as DAPO does it (the recipe that held up best in the README's experiments): token-mean
-- loss, clip-higher, dynamic sampling, no KL term, the routing bias frozen during RL
local function dapo(t)
  t.loss_type, t.eps_high, t.dynamic_sampling, t.beta, t.balance_gamma = "dapo", 0.28, true, 0,
    0
  t.temperature, t.typed_frac, t.precision = 0.8, TYPED, "bf16"
  return t
end
local R = {
  pretrain = {steps = pick(P.steps, 2), batch = pick(P.batch, 2), seq_len = P.seq_len,
              lr = P.lr, min_lr = P.min_lr, warmup = P.warmup, precision = P.precision,
              typed_frac = P.typed_frac, eval_every = pick(500, 1), eval_n = pick(16, 1)},
  -- a gentle SFT: the pretrained base already writes the worked solutions; a high rate
  -- (1.5e-3, the first edition's) undid a third of what 3000 pretraining steps had learnt
  sft = {steps = pick(200, 2), batch = pick(16, 2), seq_len = 256, lr = 2e-4, min_lr = 2e-5,
         warmup = 20, sft_docs = 0, typed_frac = TYPED, precision = "bf16"},
  -- the first RL stage: the reasoning tasks the base finds hardest
  grpo = dapo{steps = pick(60, 1), prompts = pick(8, 1), group = pick(8, 2), max_new = 192,
              lr = 3e-5, tasks = {"add:3-4", "mul:2-3", "linear:1-2", "sort:2-3",
                                  "countdown:1", "bool:1-2"}},
  reject = {tasks = EVAL, prompts = pick(256, 4), k = 4, keep = 1, max_new = 192,
            typed_frac = TYPED},
  rsft = {steps = pick(100, 2), batch = pick(16, 2), seq_len = 256, lr = 5e-5, min_lr = 5e-6,
          precision = "bf16"},
  -- the second RL stage: every task, the word chores and refusals with the preference rewards
  rl2 = dapo{steps = pick(40, 1), prompts = pick(8, 1), group = pick(8, 2), max_new = 192,
             lr = 2e-5, tasks = {"add:1-4", "mul:1-3", "linear:1-2", "bool:1-2", "sort:1-3",
                                 "countdown:1", "chat:1-2"}},
  student = common.recipe.student,
  -- the student's base: a short pretraining on the same mixture before distillation (as
  -- DeepSeek distils into pretrained models; from scratch the first student reached 0.11)
  student_pretrain = {steps = pick(400, 2), batch = pick(16, 2), seq_len = 256, lr = 3e-3,
                      min_lr = 3e-4, warmup = 40},
  distill = {steps = pick(600, 2), batch = pick(16, 2), seq_len = 256, lr = 2e-3,
             min_lr = 2e-4, kd = 0.5},
}
local EVAL_N = pick(64, 1)

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

-- "CPU (its extensions), OpenBLAS ... kernels, N threads": what the last bits depend on
local function machine_line()
  local mc = r1.machine()
  return ("%s (%s), %s, bf16 products %s, %d thread%s"):format(mc.cpu, mc.isa, mc.blas,
    mc.kernels, mc.threads, mc.threads == 1 and "" or "s")
end

-- The record of the run, kept beside the model (DIR/stages.jsonl, one JSON object per line) so
-- that --card can rebuild the card without the stage models: the evaluation after each stage
-- (kind "stage"), the pretraining frontier (kind "frontier": accuracy against minutes) and
-- the MTP acceptance after each stage.
local record = {}
local function cells_json(e)
  local out = {}
  for _, c in ipairs(e.cells) do
    out[#out + 1] = ('{"task": "%s", "difficulty": %d, "n": %d, "accuracy": %.6f, '
      .. '"format": %.6f, "language": %.6f}'):format(c.task, c.difficulty, c.n, c.accuracy,
      c.format, c.language)
  end
  return "[" .. table.concat(out, ", ") .. "]"
end
local function remember(kind, name, e, extra)
  local by = ""
  for _, l in ipairs{"en", "es"} do
    local b = e.by_lang and e.by_lang[l]
    if b then
      by = by .. (', "%s_n": %d, "%s_accuracy": %.6f, "%s_format": %.6f, "%s_language": %.6f')
        :format(l, b.n, l, b.accuracy, l, b.format, l, b.language)
    end
  end
  record[#record + 1] = ('{"kind": "%s", "name": "%s", "accuracy": %.6f, "format": %.6f, '
    .. '"language": %.6f%s%s, "cells": %s}'):format(kind, name, e.accuracy, e.format, e.language,
    by, extra or "", cells_json(e))
end
-- reads a stages.jsonl back: {kind, name, accuracy, format, language, minutes, step,
-- mtp_accept, mtp_drafts, cells = {["add:1"] = accuracy, ...}}
local function read_record(path)
  local f = io.open(path)
  if not f then return {} end
  local rows = {}
  for line in f:lines() do
    local r = {kind = line:match('"kind": "([^"]*)"'), name = line:match('"name": "([^"]*)"'),
               cells = {}}
    for _, k in ipairs{"accuracy", "format", "language", "minutes", "step", "mtp_accept",
                       "mtp_drafts"} do
      r[k] = tonumber(line:match('"' .. k .. '": ([-%d.e]+)'))
    end
    for _, l in ipairs{"en", "es"} do
      local n = tonumber(line:match('"' .. l .. '_n": (%d+)'))
      if n then
        r.by_lang = r.by_lang or {}
        r.by_lang[l] = {n = n}
        for _, k in ipairs{"accuracy", "format", "language"} do
          r.by_lang[l][k] = tonumber(line:match('"' .. l .. '_' .. k .. '": ([-%d.e]+)'))
        end
      end
    end
    for t, d, acc in line:gmatch('"task": "(%w+)", "difficulty": (%d+), "n": %d+, '
                                 .. '"accuracy": ([%d.]+)') do
      r.cells[t .. ":" .. d] = tonumber(acc)
    end
    if r.kind then rows[#rows + 1] = r end
  end
  f:close()
  return rows
end

-- the card: the per-stage table (every cell of EVAL against its target), the saved model in
-- both phrasings, the student, the pretraining frontier and the MTP acceptance
local function write_card(dir, student_dir, minutes, trained_on)
  local saved = r1.load(dir)
  -- the fixed check the test suite repeats (tests/lua/t_builtin.lua): 24 problems, six tasks
  local FIXED = "add:2,mul:2,linear:1,bool:2,sort:2,chat:1"
  local fixed = r1.evaluate{model = saved, tasks = FIXED, n = 4, trained = TASKS}
  common.write_atomic(dir .. "/eval.json",
    ('{"tasks": "%s", "n": 4, "accuracy": %.6f, "format": %.6f, "language": %.6f}\n')
    :format(FIXED, fixed.accuracy, fixed.format, fixed.language))
  stage("check", "saved model on %s (4 each): %s", FIXED, summary(fixed))
  local final = r1.evaluate{model = saved, tasks = EVAL, n = EVAL_N, trained = TASKS}
  stage("eval", "the saved model: %s", summary(final))
  local typed = r1.evaluate{model = saved, tasks = EVAL, n = EVAL_N, trained = TASKS,
                            phrasing = "typed"}
  stage("eval", "the saved model, typed questions: %s", summary(typed))
  local st = r1.load(student_dir)
  local se = r1.evaluate{model = st, tasks = EVAL, n = EVAL_N, trained = TASKS}
  stage("eval", "the student: %s", summary(se))
  local rows = read_record(dir .. "/stages.jsonl")
  local stages, frontier = {}, {}
  for _, r in ipairs(rows) do
    if r.kind == "stage" then stages[#stages + 1] = r end
    if r.kind == "frontier" then frontier[#frontier + 1] = r end
  end
  local function cellmap(e)
    local out = {}
    for _, c in ipairs(e.cells) do out[c.task .. ":" .. c.difficulty] = c.accuracy end
    return out
  end
  local cols = {}
  for _, r in ipairs(stages) do cols[#cols + 1] = {name = r.name, cells = r.cells, e = r} end
  cols[#cols + 1] = {name = "saved (BF16)", cells = cellmap(final), e = final}
  local typed_cells = cellmap(typed)
  cols[#cols + 1] = {name = "typed questions", cells = typed_cells, e = typed}
  cols[#cols + 1] = {name = "student", cells = cellmap(se), e = se}
  local head, rule = {"| task | difficulty | target"}, {"| --- | ---: | ---:"}
  for _, c in ipairs(cols) do
    head[#head + 1] = " | " .. c.name
    rule[#rule + 1] = " | ---:"
  end
  local lines = {table.concat(head) .. " |", table.concat(rule) .. " |"}
  local missed = {}
  for _, c in ipairs(final.cells) do
    local key = c.task .. ":" .. c.difficulty
    local target = (TARGET[c.task] or {})[c.difficulty]
    local row = {("| %s | %d | %s"):format(c.task, c.difficulty,
                                           target and ("%.2f"):format(target) or "")}
    for _, col in ipairs(cols) do
      local v = col.cells[key]
      row[#row + 1] = v and (" | %.2f"):format(v) or " | "
    end
    lines[#lines + 1] = table.concat(row) .. " |"
    local worst = math.min(c.accuracy, typed_cells[key] or 0)
    if target and worst < target then
      missed[#missed + 1] = ("%s %d (%.2f, typed %.2f; target %.2f)"):format(c.task,
        c.difficulty, c.accuracy, typed_cells[key] or 0, target)
    end
  end
  for _, k in ipairs{"accuracy", "format", "language"} do
    local row = {("| **%s** | all | %s"):format(k, k == "format" and "1.00" or "")}
    for _, col in ipairs(cols) do row[#row + 1] = (" | %.2f"):format(col.e[k]) end
    lines[#lines + 1] = table.concat(row) .. " |"
  end
  -- language consistency by the language the question asks for (target 0.99 in each)
  for _, l in ipairs{{"en", "English"}, {"es", "Spanish"}} do
    local row = {("| **language** | asked in %s | 0.99"):format(l[2])}
    for _, col in ipairs(cols) do
      local b = col.e.by_lang and col.e.by_lang[l[1]]
      row[#row + 1] = b and (" | %.2f"):format(b.language) or " | "
    end
    lines[#lines + 1] = table.concat(row) .. " |"
    for _, e in ipairs{{final, "task phrasing"}, {typed, "typed"}} do
      local b = e[1].by_lang[l[1]]
      if b.language < 0.99 then
        missed[#missed + 1] = ("language consistency asked in %s, %s (%.3f; target 0.99)")
          :format(l[2], e[2], b.language)
      end
    end
  end
  for _, e in ipairs{{final, "task phrasing"}, {typed, "typed"}} do
    if e[1].format < 1 then
      missed[#missed + 1] = ("format, %s (%.3f; target 1.00)"):format(e[2], e[1].format)
    end
  end
  local tab = table.concat(lines, "\n")
  print(tab)
  -- the frontier: held-out accuracy of the base during pretraining against minutes
  local fr = {}
  if #frontier > 0 then
    local keys = {}
    for _, c in ipairs(final.cells) do keys[#keys + 1] = c.task .. ":" .. c.difficulty end
    local h = {"| step | minutes | all"}
    local ru = {"| ---: | ---: | ---:"}
    for _, k in ipairs(keys) do
      h[#h + 1] = " | " .. k:gsub(":", " ")
      ru[#ru + 1] = " | ---:"
    end
    fr = {table.concat(h) .. " |", table.concat(ru) .. " |"}
    for _, r in ipairs(frontier) do
      -- "all": the mean over the card's cells (the run's own evaluation also scores the
      -- difficulty above each trained range, which the card leaves out)
      local sum, cnt = 0, 0
      for _, k in ipairs(keys) do
        if r.cells[k] then sum, cnt = sum + r.cells[k], cnt + 1 end
      end
      local row = {("| %d | %.1f | %.2f"):format(r.step or 0, r.minutes or 0,
                                                 cnt > 0 and sum / cnt or 0)}
      for _, k in ipairs(keys) do
        row[#row + 1] = r.cells[k] and (" | %.2f"):format(r.cells[k]) or " | "
      end
      fr[#fr + 1] = table.concat(row) .. " |"
    end
  end
  local acc = {}
  for _, r in ipairs(stages) do
    if r.mtp_accept then
      acc[#acc + 1] = ("| after %s | %.2f%% | %d |"):format(r.name, 100 * r.mtp_accept,
        r.mtp_drafts or 0)
    end
  end
  acc[#acc + 1] = ("| the saved model (BF16) | %.2f%% | %d |"):format(
    100 * (final.mtp_accept and final.mtp_accept[1] or 0),
    final.mtp_drafts and final.mtp_drafts[1] or 0)
  local miss_text
  if #missed == 0 then
    miss_text = "Every cell reaches its target in both phrasings."
  else
    miss_text = "Targets missed (the saved model; the worse of the two phrasings counts): "
      .. table.concat(missed, ", ") .. ". How far pretraining alone carried each cell "
      .. "against minutes is in the frontier below."
  end
  common.write_atomic(dir .. "/card.md", ([[
# r1lab built-in model

A miniature DeepSeek-V3 (the `tiny` preset: hidden 192, 6 layers with the first dense, MLA,
16 routed experts + 1 shared, top-4, one MTP module; %d parameters) trained by
`scripts/train_builtin.lua` through the DeepSeek-R1 recipe: pretraining on worked solutions
of every task in English and Spanish, cold-start SFT, GRPO with the rule rewards (accuracy,
format, language consistency; DAPO's loss, clip-higher and dynamic sampling), rejection
sampling + SFT, and a second RL stage with preference rewards (helpfulness, harmlessness);
then distilled into a dense student, pretrained %d steps on the same mixture first. Every
stage trains in BF16 mixed precision, and %d%% of its questions are phrased as people type them
("what's 12 times 7"). Weights in BF16.

Made with: `r1lab run scripts/train_builtin.lua --seed %d` (%.0f minutes on 2 CPU cores).
Trained on: %s.
Evaluated on: %s.

## Accuracy after each stage

Greedy decoding on held-out problems (%d per cell, half of them in Spanish), the questions in
the tasks' own phrasing except in the column "typed questions" (the saved model asked as people
type them: "What is 457+389?", "Cuanto es 45+17?"). Each stage's column is the model as that
stage left it (fp32); "saved" is the BF16 checkpoint in this folder; "student" is the distilled
dense model in `models/builtin-student` (%d parameters, no experts, no MTP). Trained on
`%s`.

%s

%s

## Pretraining frontier

Held-out accuracy of the base model during pretraining (16 problems per cell, greedy) against
the minutes of the run, on the machine above: how far more pretraining would carry each task.

%s

## MTP acceptance

How often greedy speculative decoding would accept the MTP module's draft of the token after
next (the tiny preset has one MTP depth), on the greedy completions of the held-out problems
above, after each stage.

| model | acceptance | drafts |
| --- | ---: | ---: |
%s
]]):format(saved:params().total, R.student_pretrain.steps, math.floor(TYPED * 100 + 0.5),
    a.seed, minutes, trained_on, machine_line(), EVAL_N, st:params().total, TASKS, tab, miss_text,
    #fr > 0 and table.concat(fr, "\n") or "(not recorded)", table.concat(acc, "\n")))
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
  write_card(a.card, student_of(a.card), minutes,
             old:match("\nTrained on: (.-)%.\n") or "not recorded (made before cards said)")
  return
end

local m = r1.init("tiny", {seed = a.seed})
stage("init", "%s", tostring(m))
os.execute("mkdir -p '" .. a.out .. "'")

-- the stage's evaluation on every cell of the card, kept in the record
local function stage_eval(what)
  local e = r1.evaluate{model = m, tasks = EVAL, n = EVAL_N, trained = TASKS}
  remember("stage", what, e, (', "mtp_accept": %.6f, "mtp_drafts": %d'):format(
    e.mtp_accept and e.mtp_accept[1] or 0, e.mtp_drafts and e.mtp_drafts[1] or 0))
  common.write_atomic(a.out .. "/stages.jsonl", table.concat(record, "\n") .. "\n")
  return e
end

local function keep(name)
  if a.stages == "" then return end
  local dir = a.stages .. "/" .. name
  os.execute("mkdir -p '" .. dir .. "'")
  m:save(dir)
end

-- 1. pretraining, evaluated as it goes (the frontier)
local p = R.pretrain
r1.pretrain{model = m, tasks = TASKS, steps = p.steps, batch = p.batch,
  seq_len = p.seq_len, lr = p.lr, min_lr = p.min_lr, warmup = p.warmup, seed = a.seed,
  precision = p.precision, typed_frac = p.typed_frac, eval_every = p.eval_every,
  eval_n = p.eval_n,
  on_step = function(s)
    if s.eval then
      remember("frontier", "pretraining", s.eval, (', "step": %d, "minutes": %.2f'):format(
        s.step, (os.time() - wall0) / 60))
      stage("pretrain", "step %d/%d loss %.3f held-out accuracy %.2f", s.step, s.steps, s.loss,
            s.eval.accuracy)
    elseif s.step % 100 == 0 then
      stage("pretrain", "step %d/%d loss %.3f", s.step, s.steps, s.loss)
    end
  end}
stage("pretrain", "done: %s", summary(stage_eval("pretraining")))
keep("pretrain")

-- 2. cold-start SFT
local s = R.sft
r1.sft{model = m, tasks = TASKS, steps = s.steps, batch = s.batch, seq_len = s.seq_len,
  lr = s.lr, min_lr = s.min_lr, warmup = s.warmup, sft_docs = s.sft_docs, seed = a.seed + 1,
  typed_frac = s.typed_frac, precision = s.precision, eval_every = 0, eval_n = 1,
  on_step = function(st)
    if st.step % 50 == 0 then stage("sft", "step %d/%d loss %.3f", st.step, st.steps, st.loss) end
  end}
stage("sft", "done: %s", summary(stage_eval("cold-start SFT")))
keep("sft")

-- 3. GRPO with the rule rewards
local function rl(cfg, seed, rewards, name)
  local o = {model = m, seed = seed, rewards = rewards}
  for k, v in pairs(cfg) do o[k] = v end
  o.on_step = function(st)
    if st.step % 10 == 0 or Q then
      stage(name, "step %d reward %.3f accuracy %.2f format %.2f language %.2f length %.0f",
        st.step, st.reward, st.accuracy, st.format, st.language, st.len_mean)
    end
  end
  r1.grpo(o)
end
rl(R.grpo, a.seed + 2, {"accuracy", "format", {"language", weight = 0.5}}, "grpo")
stage("grpo", "done: %s", summary(stage_eval("GRPO")))
keep("grpo")

-- 4. rejection sampling + SFT on what passed
local samples = os.tmpname()
local rj = R.reject
local rs = r1.reject_sample{model = m, tasks = rj.tasks, prompts = rj.prompts, k = rj.k,
  keep = rj.keep, max_new = rj.max_new, temperature = 0.8, seed = a.seed + 3, out = samples,
  typed_frac = rj.typed_frac}
stage("reject", "kept %d of %d samples (%d correct), plus %d direct answers", rs.kept,
  rs.sampled, rs.correct, rs.direct)
local rf = R.rsft
if rs.kept + rs.direct > 0 then
  r1.sft{model = m, data = samples, steps = rf.steps, batch = rf.batch, seq_len = rf.seq_len,
    lr = rf.lr, min_lr = rf.min_lr, precision = rf.precision, seed = a.seed + 4,
    eval_every = 0} -- stage_eval below evaluates it
  stage("rs-sft", "done: %s", summary(stage_eval("rejection sampling + SFT")))
  keep("rs-sft")
else
  stage("rs-sft", "skipped: no sample passed the filters")
end

-- 5. the second RL stage: every task and the general requests, rule and preference rewards
rl(R.rl2, a.seed + 5, {"accuracy", "format", {"language", weight = 0.5}, "helpfulness",
                       "harmlessness"}, "rl2")
stage("rl2", "done: %s", summary(stage_eval("the second RL stage")))
keep("rl2")

-- save the model: BF16 weights, the tokenizer, and its card
m:save(a.out, {dtype = "bf16"})

-- 6. distillation into a small dense student, from the final model's own filtered samples
local student_dir = student_of(a.out)
local st_cfg = {preset = "tiny"}
for k, v in pairs(R.student) do st_cfg[k] = v end
local student = r1.init(st_cfg, {seed = a.seed + 6})
local sp = R.student_pretrain
r1.pretrain{model = student, tasks = TASKS, steps = sp.steps, batch = sp.batch,
  seq_len = sp.seq_len, lr = sp.lr, min_lr = sp.min_lr, warmup = sp.warmup, seed = a.seed + 9,
  precision = P.precision, typed_frac = P.typed_frac,
  eval_every = 0} -- no evaluation of its own at the end: the student is evaluated below
stage("student", "pretrained %d steps on the mixture", sp.steps)
local more = os.tmpname()
rs = r1.reject_sample{model = m, tasks = EVAL, prompts = pick(512, 4), k = 2, keep = 1,
  max_new = 192, temperature = 0.7, seed = a.seed + 7, out = more, typed_frac = TYPED}
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
