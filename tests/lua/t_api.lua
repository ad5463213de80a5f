-- t_api.lua — every function of the r1 module does what scripts/README.md says.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local t = require "tap"
local r1 = require "r1"
local src = os.getenv("top_srcdir") or "."

t.ok(type(r1.version()) == "string", "r1.version")
t.is(r1.set_threads(1), 1, "r1.set_threads")
do
    local mc = r1.machine()
    t.ok(type(mc.cpu) == "string" and #mc.cpu > 0 and type(mc.isa) == "string",
         "r1.machine names the CPU (" .. tostring(mc.cpu) .. "; " .. tostring(mc.isa) .. ")")
    t.ok(tostring(mc.blas):match("^OpenBLAS [%d.]+, %S+ kernels$"),
         "and the BLAS with its kernels (" .. tostring(mc.blas) .. ")")
    local cpu = r1.cpu()
    t.is(mc.kernels, cpu.active, "and the engine's kernel path (" .. tostring(mc.kernels) .. ")")
    t.is(mc.threads, 1, "and the thread count")
    t.ok(cpu.paths.portable ~= nil and cpu.paths.avx2 ~= nil and cpu.paths.avx512bf16 ~= nil
         and cpu.paths.amx ~= nil and cpu.paths[cpu.active] == "in use",
         "r1.cpu lists every kernel path and the one in use")
    local top = cpu.active == "avx512bf16" or cpu.active == "amx"
    t.is(cpu.fp32, top and "r1lab" or "OpenBLAS",
         "r1.cpu names who runs fp32 products on " .. cpu.active .. " (" .. tostring(cpu.fp32) .. ")")
    t.is(r1.cpu("portable").active, "portable", "r1.cpu(path) lowers the path")
    t.is(r1.cpu().fp32, "OpenBLAS", "... where OpenBLAS runs fp32 products")
    t.is(r1.cpu().paths[cpu.best], "available", "... and the best stays available")
    t.is(r1.cpu(cpu.best).active, cpu.best, "r1.cpu(best) returns to it")
    t.raises(function() r1.cpu("avx9") end, "invalid option", "an unknown path is refused")
    if cpu.paths.amx ~= "available" and cpu.paths.amx ~= "in use" then
        t.raises(function() r1.cpu("amx") end, "amx", "a path this machine cannot run is refused")
    end
end

-- models
local m = r1.load(src .. "/tests/data/tiny_moe")
t.ok(tostring(m):find("r1.model", 1, true), "r1.load + __tostring")
t.is(m:config().hidden_size, 32, "m:config")
local p = m:params()
t.is(p.total, 62208, "m:params total")
t.ok(p.active_per_token < p.total and p.routed_experts > 0, "m:params groups")
t.is(m:tokenizer(), nil, "no tokenizer for a fixture without tokenizer.json")

local out = m:forward({{17, 26, 12, 8, 3, 34, 3}, {24, 37, 26, 12, 16, 9, 31}})
t.ok(math.abs(out.loss - 5.456339) < 1e-4, "m:forward reproduces the PyTorch loss")
t.is(table.concat(out.logits:shape(), "x"), "2x7x40", "logits shape")
t.is(table.concat(out.mtp_logits:shape(), "x"), "2x6x40", "mtp logits shape")
t.is(#out.logits, 2, "#tensor is the first dimension")
t.is(out.routing[1].experts:numel(), 28, "routing of layer 1")
local e = out.routing[1].experts:tolist()
t.ok(e[1][1][1] < e[1][1][2], "experts ascending")
t.ok(math.type(out.routing[1].experts:get(1, 1, 1)) == "integer", "expert ids are integers")

local path = os.tmpname()
t.is(r1.save_tensors(path, {logits = out.logits, experts = out.routing[1].experts}), 2,
  "r1.save_tensors")
os.remove(path)
do
  local x <close> = out.mtp_logits
end
t.ok(tostring(out.mtp_logits):find("closed", 1, true), "<close> frees a tensor")
t.raises(function() return out.mtp_logits:get(1, 1, 1) end, "closed tensor",
  "a closed tensor refuses use")

local g = m:generate({1, 2, 3}, {max_tokens = 6})
t.is(#g.tokens, 6, "m:generate with ids")
t.is(g.finish, "length", "finish reason")
t.is(#g.routing, 6, "routing per token")
local streamed = 0
m:generate({1, 2, 3}, {max_tokens = 5, on_token = function(tok) streamed = streamed + 1 end})
t.is(streamed, 5, "on_token per token")
local stopped = 0
m:generate({1, 2, 3}, {max_tokens = 20, on_token = function(tok)
  stopped = stopped + 1
  return stopped < 3
end})
t.is(stopped, 3, "on_token returning false stops")
local b = m:generate({{1, 2}, {3, 4, 5}}, {max_tokens = 4})
t.is(#b, 2, "a batch gives a list")
-- more prompts than Lua's guaranteed stack slots (each prompt's ids sit on the stack)
local many = {}
for i = 1, 300 do many[i] = {1 + i % 7, 2 + i % 5} end
local bm = m:generate(many, {max_tokens = 2})
t.ok(#bm == 300 and #bm[300].tokens == 2, "a batch of 300 prompts")
local s1 = m:generate({5}, {max_tokens = 12, temperature = 1, seed = 3})
local s2 = m:generate({5}, {max_tokens = 12, temperature = 1, seed = 3})
t.is(table.concat(s1.tokens, " "), table.concat(s2.tokens, " "), "seeded sampling repeats")
local sp = m:generate({1, 2, 3}, {max_tokens = 10, speculative = true})
t.is(table.concat(sp.tokens, " "), table.concat(m:generate({1, 2, 3}, {max_tokens = 10}).tokens, " "),
  "speculative greedy = plain greedy")
m:close()
t.ok(tostring(m):find("closed", 1, true), "m:close")

-- a fresh model with the built-in tokenizer: text in, text out
local tiny = r1.init({preset = "tiny", num_hidden_layers = 2}, {seed = 2})
t.is(tiny:config().num_hidden_layers, 2, "r1.init with overrides")
local answer, res = tiny:ask("What is 2+2?", {max_tokens = 8})
t.ok(type(res.text) == "string" and #res.tokens == 8, "m:ask gives text")
t.ok(res.think ~= nil, "the result has a think part")
local dir = os.tmpname()
os.remove(dir)
tiny:save(dir, {dtype = "bf16"})
local back = r1.load(dir)
t.ok(back:tokenizer() ~= nil, "m:save writes tokenizer.json and r1.load reads it")
os.execute("rm -rf '" .. dir .. "'")

-- tokenizer
local tok = r1.tokenizer()
t.is(tok:vocab_size(), 128, "r1.tokenizer")
t.is(tok:decode(tok:encode("7+9=16")), "7+9=16", "encode/decode round trip")
t.is(tok:special("eos"), 2, "special ids")
t.is(tok:token(tok:special("think")), "<think>", "tok:token")
t.is(#tok:encode("<think>"), 1, "a special token is one id")
t.ok(tok:decode(tok:encode("hi", {chat = true})):find("<|assistant|><think>", 1, true),
  "the chat prompt ends with <|assistant|><think>")

-- tasks and rewards
t.is(#r1.tasks.list(), 7, "seven tasks")
local add = r1.tasks.add{difficulty = 2, seed = 1, lang = "en"}
local s = add:sample(0)
t.ok(s.prompt:find("Think in English", 1, true), "a sample asks for its language")
local comp = s.solution .. "</think><answer>" .. s.target .. "</answer><|eos|>"
t.ok(add:verify(comp, s.target), "a worked solution passes its verifier")
t.ok(not add:verify("</think><answer>0</answer>", s.target == "0" and "1" or s.target),
  "a wrong answer fails")
local n = 0
for x in add:samples(3) do n = n + 1 end
t.is(n, 3, "task:samples iterates")
local sample = {completion = comp, target = s.target, task = "add", lang = "en", tokens = 10,
                max_tokens = 64}
t.is(r1.rewards.accuracy(sample), 1.0, "r1.rewards.accuracy")
t.is(r1.rewards.format(sample), 1.0, "r1.rewards.format")
t.ok(r1.rewards.language(sample) > 0.5, "r1.rewards.language")
t.is(r1.rewards.length(sample), 0.0, "r1.rewards.length")

-- GRPO with a Lua reward that changes the rewards
local seen, steps = 0, 0
local last = r1.grpo{model = tiny, task = "add", difficulty = 1, steps = 2, group = 4,
  prompts = 2, max_new = 12, beta = 0,
  rewards = {"format", {name = "const", fn = function(x) seen = seen + 1; return 0.25 end}},
  on_step = function(st) steps = steps + 1 end}
t.is(seen, 16, "a Lua reward scores every completion")
t.is(steps, 2, "on_step per step")
t.ok(math.abs(last.const - 0.25) < 1e-12, "the Lua reward's value reaches the stats")

-- dynamic sampling: once every group scores the same (here: the reward turns constant after
-- the first step's 8 completions), the run ends with the reason instead of an error
local calls, ckpt = 0, os.tmpname()
os.remove(ckpt)
local ds_last = r1.grpo{model = tiny, task = "add", difficulty = 1, steps = 5, group = 4,
  prompts = 2, max_new = 4, beta = 0, dynamic_sampling = true, save = ckpt,
  rewards = {{name = "flip", fn = function() calls = calls + 1
    return calls <= 8 and calls % 2 or 1 end}}}
t.is(ds_last.step, 1, "a run with nothing left to learn stops after its last real step")
t.ok((ds_last.stopped or ""):find("equal rewards", 1, true), "and says why")
local cf = io.open(ckpt .. "/config.json")
t.ok(cf, "the checkpoint of the run is saved")
if cf then cf:close() end
os.execute("rm -rf '" .. ckpt .. "'")
t.raises(function()
  r1.grpo{model = tiny, task = "add", difficulty = 1, steps = 2, group = 4, prompts = 2,
    max_new = 4, beta = 0, dynamic_sampling = true, rewards = {{name = "one", fn = function()
      return 1 end}}}
end, "equal rewards", "on the first step it is an error")

-- task entries with a difficulty range: each prompt draws its difficulty, the same for a seed
local function difficulties(seed)
  local ds = {}
  r1.grpo{model = tiny, tasks = {"add:1-3", "mul:2"}, steps = 1, group = 2, prompts = 8,
    max_new = 2, beta = 0, seed = seed, rewards = {"format"},
    on_group = function(g) ds[#ds + 1] = g.task .. g.difficulty end}
  return table.concat(ds, " ")
end
local d1 = difficulties(3)
t.ok(d1:find("mul2") and not d1:find("mul[13]"), "\"mul:2\" fixes the difficulty: " .. d1)
local seen_d = {}
for d in d1:gmatch("add(%d)") do seen_d[d] = true end
t.ok(seen_d["1"] and seen_d["2"] or seen_d["2"] and seen_d["3"] or seen_d["1"] and seen_d["3"],
  "\"add:1-3\" draws several difficulties: " .. d1)
t.is(difficulties(3), d1, "the draw depends on the seed only")

-- questions as people type them: r1.tasks' phrasing, and typed_frac's share of the prompts of
-- GRPO and rejection sampling (drawn from each prompt's seed)
local ty = r1.tasks.mul{difficulty = 2, seed = 4, lang = "es", phrasing = "typed"}:sample(0)
local own = r1.tasks.mul{difficulty = 2, seed = 4, lang = "es"}:sample(0)
t.ok(ty.typed and not own.typed and ty.target == own.target and ty.solution == own.solution
  and not ty.prompt:find("Piensa") and own.prompt:find("Piensa en espanol"),
  "a typed question poses the same problem: " .. ty.prompt)
t.raises(function() r1.tasks.add{phrasing = "casual"} end, "expected task, typed or mixed",
  "an unknown phrasing is refused")
local function asks(ps)
  local n = 0
  for _, p in ipairs(ps) do if p:find("Think in") or p:find("Piensa en") then n = n + 1 end end
  return n
end
local function grpo_prompts(frac)
  local ps = {}
  r1.grpo{model = tiny, tasks = {"add:2", "sort:1"}, steps = 1, group = 2, prompts = 8,
    max_new = 2, beta = 0, seed = 5, rewards = {"format"}, typed_frac = frac,
    on_group = function(g) ps[#ps + 1] = g.prompt end}
  return ps
end
local g0, g1, gh = grpo_prompts(0), grpo_prompts(1), grpo_prompts(0.5)
t.ok(#g0 == 8 and asks(g0) == 8 and asks(g1) == 0 and asks(gh) > 0 and asks(gh) < 8,
  ("GRPO typed_frac 0 / 1 / 0.5: %d, %d, %d of 8 prompts ask for a language"):format(
  asks(g0), asks(g1), asks(gh)))
t.is(table.concat(grpo_prompts(0.5), "|"), table.concat(gh, "|"), "and the draw is the seed's")
local rj = os.tmpname()
r1.reject_sample{model = tiny, tasks = {"add:1"}, prompts = 6, k = 1, typed_frac = 1,
  direct_share = 1, out = rj}
local rps = {}
for l in io.lines(rj) do rps[#rps + 1] = l:match('"prompt":"([^"]*)"') end
t.ok(#rps > 0 and asks(rps) == 0, ("rejection sampling typed_frac 1: %d samples, none asks "
  .. "for a language"):format(#rps))
os.remove(rj)

-- pretraining and cold-start SFT from Lua
local steps_seen = 0
local sft = r1.sft{model = tiny, steps = 2, batch = 2, seq_len = 192, eval_every = 0, eval_n = 1,
  on_step = function(st) steps_seen = st.step end}
t.is(steps_seen, 2, "r1.sft runs its steps")
t.ok(sft.eval.accuracy ~= nil and #sft.eval.cells > 0, "and evaluates at the end")
local pre = r1.pretrain{model = tiny, steps = 1, batch = 2, seq_len = 192, eval_every = 0,
  eval_n = 1}
t.is(pre.step, 1, "r1.pretrain")

-- r1.evaluate: which cells count as trained on
local ev = r1.evaluate{model = tiny, tasks = "add:1-2", n = 1}
t.ok(ev.cells[1].in_training and ev.cells[2].in_training,
  "without trained, every difficulty evaluated counts as trained on")
ev = r1.evaluate{model = tiny, tasks = "add:1-2,mul:1", n = 1, trained = "add:1,mul:1-2"}
local marks = {}
for _, c in ipairs(ev.cells) do
  marks[#marks + 1] = c.task .. c.difficulty .. "=" .. tostring(c.in_training)
end
t.is(table.concat(marks, " "), "add1=true add2=false mul1=true",
  "trained marks the cells from the training task list")
t.is(ev.accuracy_above, ev.cells[2].accuracy, "and accuracy_above is the untrained cells'")
t.ok(ev.cells[1].think_len ~= nil, "cells carry the reasoning length")
t.raises(function() r1.evaluate{model = tiny, tasks = "add:1", n = 1, trained = "nosuch"} end,
  "trained", "a bad trained list is named")

-- rejection sampling: a random model keeps nothing but the direct answers, each verified
local out = os.tmpname()
local rs = r1.reject_sample{model = tiny, task = "add", difficulty = 1, prompts = 20, k = 2,
  max_new = 8, out = out}
t.is(rs.sampled, 40, "r1.reject_sample samples k per prompt")
local lines, verified = 0, 0
for line in io.lines(out) do
  lines = lines + 1
  local prompt = line:match('"prompt":"(.-)"')
  local comp = line:match('"completion":"(.-)"'):gsub("\\n", "\n")
  local target = line:match('"target":"(.-)"')
  if add:verify(comp, target) then verified = verified + 1 end
end
t.is(lines, rs.kept + rs.direct, "the file holds the kept and direct samples")
t.ok(rs.direct >= 1 and verified == lines, "every written sample verifies")

-- stopped by on_progress after a batch, then resume = true: the same file as in one go
local spec = {model = tiny, task = "add", difficulty = 1, prompts = 20, k = 2, max_new = 8,
  batch_prompts = 4}
local function with(extra)
  local o = {}
  for k, v in pairs(spec) do o[k] = v end
  for k, v in pairs(extra) do o[k] = v end
  return o
end
local whole, part = os.tmpname(), os.tmpname()
r1.reject_sample(with{out = whole})
local stopped = r1.reject_sample(with{out = part, on_progress = function(done) return done < 8 end})
t.is(stopped.sampled, 16, "on_progress returning false stops after the batch (8 prompts of 20)")
t.raises(function() r1.reject_sample(with{out = part}) end, "unfinished",
  "a new run into a file with an unfinished one is refused")
t.raises(function() r1.reject_sample{model = tiny, out = part, resume = true, k = 3} end,
  "own settings", "resume = true takes no settings")
local resumed = r1.reject_sample{model = tiny, out = part, resume = true}
local function read(p) local f = assert(io.open(p, "rb")); local s = f:read("a"); f:close(); return s end
t.ok(resumed.sampled == 40 and read(part) == read(whole),
  "resume = true finishes it into the same file, byte for byte")
os.remove(whole); os.remove(part)

-- "add:1-3" in the task list: the prompts cycle through add:1, add:2, add:3 and mul:2, and
-- only difficulty-1 prompts get a direct answer (all of them with direct_share 1)
local direct = r1.reject_sample{model = tiny, tasks = {"add:1-3", "mul:2"}, prompts = 8, k = 1,
  max_new = 4, direct_share = 1, out = out .. ".d"}
local diffs = {}
for line in io.lines(out .. ".d") do
  diffs[#diffs + 1] = line:match('"task":"(%a+)"') .. line:match('"difficulty":(%d+)')
end
os.remove(out .. ".d")
t.is(table.concat(diffs, " "), "add1 add1", "only the add:1 entries get direct answers (prompts 1 and 5)")
t.is(direct.sampled, 8, "every prompt is sampled")
-- the same list as one string, as the command line writes it (it crashed r1lab once: the string
-- was read as a list), and more entries than the old limit of 16 (17 difficulties here)
local whole17 = "add:1-4,mul:1-3,linear:1-2,bool:1-2,sort:1-3,countdown:1,chat:1-2"
local as_text = r1.reject_sample{model = tiny, tasks = whole17, prompts = 17, k = 1, max_new = 2,
  direct_share = 1, out = out .. ".s"}
local seen = {}
for line in io.lines(out .. ".s") do
  seen[line:match('"task":"(%a+)"') .. line:match('"difficulty":(%d+)')] = true
end
os.remove(out .. ".s")
t.is(as_text.sampled, 17, "tasks as a string: every prompt is sampled")
local kinds = {}
for k in pairs(seen) do kinds[#kinds + 1] = k end
table.sort(kinds)
t.is(table.concat(kinds, " "), "add1 bool1 chat1 countdown1 linear1 mul1 sort1",
  "tasks as a string: direct answers for every task's difficulty 1")
t.raises(function() r1.reject_sample{model = tiny, tasks = "add:1,nope:2", out = out .. ".s"} end,
  "r1.reject_sample: tasks: entry 2", "tasks as a string: a bad entry is named by position")
-- OUT is renamed into place at the end: a device or FIFO there is refused up front (a test that
-- once sampled into "/dev/null" replaced the system's /dev/null with a file, as root)
local fifo = os.tmpname()
os.remove(fifo)
if os.execute("mkfifo '" .. fifo .. "'") then
  t.raises(function() r1.reject_sample{model = tiny, tasks = "add:1", prompts = 1, k = 1,
    max_new = 2, out = fifo} end, fifo .. ": exists and is not a regular file",
    "rejection sampling refuses to rename over a FIFO")
  t.ok(os.execute("test -p '" .. fifo .. "'"), "and the FIFO is still one")
  os.remove(fifo)
else
  t.ok(false, "mkfifo makes a FIFO for the test")
end
t.raises(function() r1.reject_sample{model = tiny, tasks = 3, out = out .. ".s"} end,
  "expected a list of task names or a string", "tasks of another type is refused, not read")

-- SFT on that file, and distillation into a small dense student
local ds = r1.sft{model = tiny, data = out, steps = 2, batch = 2, seq_len = 128}
t.is(ds.step, 2, "r1.sft{data = FILE} trains on the records")
local student = r1.init({preset = "tiny", num_hidden_layers = 1, n_routed_experts = 0,
  num_nextn_predict_layers = 0, hidden_size = 64, num_attention_heads = 2}, {seed = 4})
local dd = r1.distill{student = student, teacher = tiny, data = out, steps = 2, batch = 2,
  seq_len = 128, kd = 0.5}
t.ok(dd.step == 2 and dd.kl >= 0, "r1.distill with a teacher")
os.remove(out)
-- the collector knows a model's size: models dropped in a loop do not pile up
do
  local alive = setmetatable({}, {__mode = "k"})
  for i = 1, 40 do alive[r1.init("tiny", {seed = i})] = true end
  local n = 0
  for _ in pairs(alive) do n = n + 1 end
  t.ok(n <= 10, "40 dropped models: " .. n .. " still uncollected (the GC sees their size)")
end
-- r1.pretrain{resume = DIR}: a run stopped by on_step continues exactly where it stopped
do
  local base = os.tmpname()
  os.remove(base)
  local function fresh() return r1.init({preset = "tiny", num_hidden_layers = 2}, {seed = 3}) end
  local opts = function(m, out, extra)
    local o = {model = m, tasks = "add:1", steps = 4, batch = 2, eval_every = 0, save_every = 0,
               seed = 5, out = out}
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end
  local ma, mb = fresh(), fresh()
  r1.pretrain(opts(ma, base .. "-a"))
  r1.pretrain(opts(mb, base .. "-b", {on_step = function(s) return s.step < 2 end}))
  local r = r1.pretrain{model = mb, resume = base .. "-b"}
  local la = ma:forward({{1, 3, 40, 41, 4}}).loss
  local lb = mb:forward({{1, 3, 40, 41, 4}}).loss
  t.ok(r.step == 4 and la == lb, string.format(
    "r1.pretrain resume = DIR finishes the run in m exactly (loss %.9g and %.9g)", la, lb))
  local function lines(f)
    local t_ = {}
    for l in io.lines(f) do t_[#t_ + 1] = l:gsub('"tokens_per_s":[^,}]*', ""):gsub('"elapsed":[^,}]*', "") end
    return table.concat(t_, "\n")
  end
  t.is(lines(base .. "-b/metrics.jsonl"), lines(base .. "-a/metrics.jsonl"),
    "and its metrics equal the uninterrupted run's (timings aside)")
  t.raises(function() r1.sft{model = mb, resume = base .. "-b"} end, "holds a pretrain run",
    "resuming with the wrong stage is named")
  t.raises(function() r1.pretrain{model = mb, resume = base .. "-b", steps = 9} end,
    "'steps' cannot go with it", "settings cannot go with resume")
  os.execute("rm -rf '" .. base .. "-a' '" .. base .. "-b'")
end
t.done()
