-- t_errors.lua — bad arguments give clear errors; errors in callbacks and rewards stop cleanly
-- (the sanitizer build checks that nothing leaks on these paths).
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local t = require "tap"
local r1 = require "r1"
local src = os.getenv("top_srcdir") or "."

t.raises(function() r1.load({}) end, "bad argument #1", "r1.load({})")
t.raises(function() r1.load("/nonexistent") end, "/nonexistent/config.json", "a missing folder")
t.raises(function() r1.init("huge") end, "huge", "an unknown preset")
t.raises(function() r1.init({preset = "tiny", hidden_sise = 3}) end, "unknown config key 'hidden_sise'",
  "a misspelt config key")
local m = r1.load(src .. "/tests/data/tiny_moe")
t.raises(function() m:generate({1, 2}, {max_tokens = "x"}) end,
  "bad option 'max_tokens' (integer expected, got string)", "a wrong option type")
t.raises(function() m:generate({1, 99}) end, "token 1 of prompt 0 is 99", "a token out of range")
t.raises(function() m:generate({}) end, "prompt 0 is empty", "an empty prompt")
t.raises(function() m:generate("hello") end, "no tokenizer", "text without a tokenizer")
t.raises(function() m:forward({{1, 2}, {3}}) end, "row 2 has 1 tokens", "ragged rows")
t.raises(function() m:generate({1}, {max_tokens = 8, on_token = function() error("boom") end}) end, "boom",
  "an error in on_token reaches the caller")
t.ok(#m:generate({1}, {max_tokens = 3}).tokens == 3, "the model still works after it")
t.raises(function() m:generate({1}, {speculative = 1}) end, "bad option 'speculative'",
  "a number for a boolean")
t.raises(function() m:save("/proc/nope/x") end, "/proc/nope", "an unwritable folder")
t.raises(function() m.config(nil) end, "bad argument #1", "a method without its object")
local x = r1.init({preset = "tiny", num_hidden_layers = 1}, {seed = 1})
t.raises(function()
  r1.grpo{model = x, task = "add", steps = 1, group = 2, prompts = 1, max_new = 4,
    rewards = {{name = "bad", fn = function() error("reward exploded") end}}}
end, "reward 'bad' failed at step 1, prompt 0", "an error in a reward names the step and prompt")
t.raises(function()
  r1.grpo{model = x, task = "add", steps = 1, group = 2, prompts = 1, max_new = 4,
    rewards = {{name = "nan", fn = function() return "x" end}}}
end, "returned string; expected a number", "a reward returning a string")
t.raises(function()
  r1.grpo{model = x, task = "nope", steps = 1}
end, "nope", "an unknown task")
t.raises(function()
  r1.grpo{model = x, task = "add", steps = 1, group = 2, prompts = 1, max_new = 4,
    on_step = function() error("step callback failed") end}
end, "step callback failed", "an error in on_step")
t.raises(function() r1.grpo{model = x, tasks = {"add:3-1"}, steps = 1} end,
  'tasks: entry 1: "add:3-1": difficulties 3-1; add has 1..', "a backwards range")
t.raises(function() r1.grpo{model = x, tasks = {"add", "mul:1-40"}, steps = 1} end,
  'entry 2: "mul:1-40": difficulties 1-40; mul has 1..', "a range beyond the task's difficulties")
t.raises(function() r1.grpo{model = x, tasks = {"add:x"}, steps = 1} end,
  'tasks: entry 1: "add:x": expected NAME, NAME:D or NAME:LO-HI', "a difficulty that is not a number")
-- one settings table per stage: misspelt keys, values out of range, wrong types
t.raises(function() r1.grpo{model = x, task = "add", setps = 10} end,
  "unknown option 'setps' for r1.grpo (did you mean 'steps'?)", "r1.grpo: a misspelt key")
t.raises(function() r1.grpo{model = x, task = "add", on_stpe = print} end,
  "did you mean 'on_step'?", "r1.grpo: a misspelt callback")
t.raises(function() r1.grpo{model = x, task = "add", prompts = 1e6} end,
  "prompts expects an integer in 1..4096", "r1.grpo: prompts out of range")
t.raises(function() r1.grpo{model = x, task = "add", lr = 0/0} end,
  "lr expects a number in", "r1.grpo: a NaN learning rate")
t.raises(function() r1.grpo{model = x, task = "add", loss_type = "gspo"} end,
  "loss_type expects one of grpo|dapo|dr_grpo|cispo", "r1.grpo: an unknown choice")
t.raises(function() r1.grpo{model = x, task = "add", loss_type = "cispo"} end,
  "cap on the importance weight", "r1.grpo: cispo with the default eps_high")
t.raises(function() r1.grpo{model = x, task = "add", rewards = {{"overlong", max = 1.5}}} end,
  "overlong's max and cache are whole numbers", "r1.grpo: overlong with a fractional max")
t.raises(function() r1.grpo{model = x, task = "add", rewards = {"randm"}} end,
  "no reward \"randm\"", "r1.grpo: a misspelt control reward")
t.raises(function() r1.grpo{model = x, task = "add", dynamic_sampling = "yes please"} end,
  "dynamic_sampling expects true or false", "r1.grpo: a wrongly typed flag")
t.raises(function() r1.grpo{model = x, task = "add", rewards = {{"format", weight = 1/0}}} end,
  "not a finite number", "r1.grpo: an infinite reward weight")
-- every callback error keeps its traceback (one protected-call helper for all of them)
local function where_boom() error("boom in a callback") end
t.raises(function() m:generate({1}, {max_tokens = 4, on_token = function() where_boom() end}) end,
  "in upvalue 'where_boom'", "on_token's error keeps its traceback")
t.raises(function() r1.pretrain{model = x, tasks = "add:1", steps = 1, batch = 1,
  eval_every = 0, ckpt_every = 0, on_step = function() where_boom() end} end,
  "in upvalue 'where_boom'", "r1.pretrain's on_step error keeps its traceback")
t.raises(function() r1.grpo{model = x, task = "add", steps = 1, group = 2, prompts = 1,
  max_new = 4, on_group = function() where_boom() end} end,
  "in upvalue 'where_boom'", "r1.grpo's on_group error keeps its traceback")
t.raises(function() r1.reject_sample{model = x, tasks = {"add:1"}, prompts = 1, k = 2,
  max_new = 4, out = os.tmpname(), on_progress = function() where_boom() end} end,
  "in upvalue 'where_boom'", "r1.reject_sample's on_progress error keeps its traceback")
t.raises(function() r1.grpo{model = x, tasks = {"add", 3}} end,
  "r1.grpo: tasks[2]: expected a string, got number", "r1.grpo: a task list entry that is no string")
t.raises(function() r1.pretrain{model = x, stpes = 1} end,
  "unknown option 'stpes' for r1.pretrain (did you mean 'steps'?)", "r1.pretrain: a misspelt key")
t.raises(function() r1.reject_sample{model = x, out = "/dev/null", temprature = 1} end,
  "unknown option 'temprature' for r1.reject_sample (did you mean 'temperature'?)",
  "r1.reject_sample: a misspelt key")
t.raises(function() r1.distill{student = x, data = "/dev/null", stesp = 1} end,
  "unknown option 'stesp' for r1.distill (did you mean 'steps'?)", "r1.distill: a misspelt key")
t.raises(function() r1.sft{model = x, data = "/dev/null", kd = -2} end,
  "kd expects a number in 0..100", "r1.sft on a data set: a value out of range")
t.raises(function() r1.evaluate{model = x, tasks = "add:1", nn = 2} end,
  "unknown option 'nn' for r1.evaluate (did you mean 'n'?)", "r1.evaluate: a misspelt key")
t.raises(function() r1.sft{model = x, eval_every = -1} end,
  "eval_every expects an integer in 0..", "r1.sft: a value out of range")
t.raises(function() r1.reject_sample{model = x, tasks = {"add", "mul:0"}, out = "/dev/null"} end,
  'r1.reject_sample: tasks[2] "mul:0"', "rejection sampling names a bad task entry")
t.raises(function() r1.reject_sample{model = x, tasks = {"add:1-10", "mul:1-8", "sort:1-10",
  "linear:1-6"}, out = "/dev/null"} end, "more than 32 task entries",
  "rejection sampling: too many difficulties")
t.raises(function() r1.reject_sample{model = x, tasks = "add:1-10,mul:1-8,sort:1-10,linear:1-6",
  out = "/dev/null"} end, "tasks: more than 32 entries",
  "rejection sampling: too many difficulties in a task string")
t.raises(function() r1.tasks.add{difficulty = 99} end, "difficulty 99 outside 1..10",
  "a difficulty out of range")
t.raises(function() r1.tokenizer():encode("caf\xc3\xa9") end, "byte 3", "text without a token")
-- a callback cannot close, train or run the model that calls it (the probe's M1: these were
-- use-after-free crashes); it gets an error naming the work, and the model still works after
do
  local b = r1.load(src .. "/models/builtin")
  local g = {model = b, tasks = {"add:1"}, steps = 2, group = 2, prompts = 1, max_new = 12}
  local function with(extra) local o = {} for k, v in pairs(g) do o[k] = v end
    for k, v in pairs(extra) do o[k] = v end return o end
  t.raises(function() r1.grpo(with{on_step = function() b:close() end}) end,
    "in use by r1.grpo", "m:close in on_step is refused")
  t.raises(function() r1.grpo(with{on_group = function() b:close() end}) end,
    "in use by r1.grpo", "m:close in on_group is refused")
  t.raises(function() r1.grpo(with{rewards = {{name = "c", fn = function() b:close() return 0 end}}}) end,
    "in use by r1.grpo", "m:close in a reward is refused")
  t.raises(function() r1.grpo(with{on_step = function() r1.grpo(g) end}) end,
    "r1.grpo: the model is in use by r1.grpo", "a nested r1.grpo on the same model is refused")
  t.raises(function() b:generate("1+1", {max_tokens = 8, on_token = function() b:close() end}) end,
    "in use by m:generate", "m:close in on_token is refused")
  t.raises(function() b:generate("1+1", {max_tokens = 8, on_token = function() b:forward({{1, 2}}) end}) end,
    "m:forward: the model is in use by m:generate", "so is m:forward")
  local p = r1.init({preset = "tiny", num_hidden_layers = 1}, {seed = 2})
  t.raises(function() r1.pretrain{model = p, tasks = "add:1", steps = 2, batch = 2, seq_len = 128,
    eval_every = 0, on_step = function() p:close() end} end, "in use by r1.pretrain",
    "m:close in r1.pretrain's on_step is refused")
  t.ok(#b:generate("1+1", {max_tokens = 4}).tokens == 4 and tostring(p):find("layers"),
    "and the models work after it")
  b:close()
  t.ok(tostring(b):find("closed"), "m:close works once the work is done")
end

-- validation gaps that gave silently wrong results (the probe's L2, L3)
do
  local b = r1.load(src .. "/models/builtin")
  for _, o in ipairs{{"temperature", 0 / 0}, {"top_p", 0 / 0}, {"min_p", 0 / 0},
                     {"repetition_penalty", 0 / 0}, {"temperature", -1}, {"top_p", 2}} do
    t.raises(function() b:generate("1+1", {max_tokens = 4, [o[1]] = o[2]}) end, o[1] .. " is",
      "m:generate refuses " .. o[1] .. " = " .. tostring(o[2]))
  end
  t.raises(function() b:generate("1+1", {max_tokens = 2 ^ 32 + 1}) end,
    "an integer in 1..1048576 expected, got 4294967297", "max_tokens is not truncated to 1")
  t.raises(function() b:ask("1+1\0evil") end, "NUL byte at position 4",
    "a question with a NUL byte is refused, not cut")
  local dir = os.tmpname()
  os.remove(dir)
  b:save(dir)
  local f = io.open(dir .. "/tokenizer.json", "r")
  local tj = f:read("a")
  f:close()
  -- one more token than the model has ids
  tj = tj:gsub('"vocab"%s*:%s*{', '"vocab": {"<|extra_token|>": 128, ', 1)
  tj = tj:gsub('"added_tokens"%s*:%s*%[', '"added_tokens": [{"id": 128, "content": ' ..
    '"<|extra_token|>", "single_word": false, "lstrip": false, "rstrip": false, ' ..
    '"normalized": false, "special": true}, ', 1)
  f = io.open(dir .. "/tokenizer.json", "w")
  f:write(tj)
  f:close()
  t.raises(function() r1.load(dir) end, "more than the model's vocab_size 128",
    "r1.load refuses a tokenizer larger than the vocabulary")
  os.execute("rm -rf '" .. dir .. "'")
end

t.done()
