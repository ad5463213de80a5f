-- t_builtin.lua — the committed built-in model still loads and scores what its training run
-- recorded (models/builtin/eval.json, written by scripts/train_builtin.lua on the saved BF16
-- weights) on the same small held-out set, within one problem of it.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local t = require "tap"
local r1 = require "r1"
local dir = (os.getenv("top_srcdir") or ".") .. "/models/builtin"
local f = io.open(dir .. "/eval.json")
if not f then
  print("1..0 # SKIP no built-in model at " .. dir)
  return
end
local rec = f:read("a")
f:close()
local want = tonumber(rec:match('"accuracy":%s*([%d.]+)'))
local want_fmt = tonumber(rec:match('"format":%s*([%d.]+)'))
local m = r1.load(dir)
t.ok(m:tokenizer() ~= nil, "the built-in model loads with its tokenizer")
t.is(m:config().hidden_size, 192, "it is the tiny preset")
local e = r1.evaluate{model = m, tasks = rec:match('"tasks":%s*"([^"]+)"'),
                      n = tonumber(rec:match('"n":%s*(%d+)'))}
local tol = 1 / 24 + 1e-9 -- one problem of the 24
t.ok(math.abs(e.accuracy - want) <= tol,
  ("accuracy %.3f matches the recorded %.3f"):format(e.accuracy, want))
t.ok(math.abs(e.format - want_fmt) <= tol,
  ("format %.3f matches the recorded %.3f"):format(e.format, want_fmt))
-- the evaluation by the language the prompt asks for: every sample in one of the two, and the
-- overall means are the two languages' means weighted by their counts
local en, es = e.by_lang.en, e.by_lang.es
local total = 0
for _, c in ipairs(e.cells) do total = total + c.n end
t.is(en.n + es.n, total, "by_lang: every sample asked in English or Spanish")
t.ok(en.n > 0 and es.n > 0, ("by_lang: both languages asked (%d, %d)"):format(en.n, es.n))
for _, k in ipairs{"accuracy", "format", "language"} do
  local mixed = (en[k] * en.n + es[k] * es.n) / (en.n + es.n)
  t.ok(math.abs(mixed - e[k]) < 1e-9,
    ("by_lang: %s %.3f is the weighted mean of %.3f and %.3f"):format(k, e[k], en[k], es[k]))
end
t.done()
