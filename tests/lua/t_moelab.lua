-- t_moelab.lua — the MoE lab from Lua: GRPO's rollout precision, mismatch meter and routing
-- replay options and statistics, MaxVio in the training statistics, the auxiliary balance
-- loss, MTP through GRPO and its acceptance, r1.experts' analytics, and their bad input.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local t = require "tap"
local r1 = require "r1"
local src = os.getenv("top_srcdir") or "."
r1.set_threads(1)

-- GRPO with an fp8 sampler: the meter per MoE layer; replay makes it 0
local function step(opts)
  local m = r1.load(src .. "/models/builtin")
  local o = {model = m, tasks = "add:1", steps = 1, prompts = 2, group = 4, max_new = 48,
             seed = 3}
  for k, v in pairs(opts) do o[k] = v end
  return r1.grpo(o)
end
local plain = step{rollout_dtype = "fp8"}
t.is(#plain.route_flip, 5, "route_flip has one entry per MoE layer of the built-in model")
t.ok(plain.route_flip_mean > 0, ("an fp8 sampler: %.3f of the tokens routed differently")
     :format(plain.route_flip_mean))
t.ok(plain.route_flip_1 == plain.route_flip[1], "route_flip_N for the panes")
local rep = step{rollout_dtype = "fp8", routing_replay = true}
t.is(rep.route_flip_mean, 0.0, "routing replay: none")
t.ok(#plain.maxvio == 5 and plain.maxvio_mean >= 0, "GRPO reports MaxVio per MoE layer")
t.raises(function() step{rollout_dtype = "fp4"} end, "fp32|bf16|fp8",
         "an unknown rollout_dtype names the choices")

-- MaxVio during pretraining
local m = r1.load(src .. "/models/builtin")
local seen
r1.pretrain{model = m, tasks = "add:1", steps = 1, batch = 2, seq_len = 256,
            on_step = function(s) seen = s end}
t.ok(seen and #seen.maxvio == 5 and seen.maxvio[1] >= 0 and seen.maxvio_mean >= 0,
     "pretraining reports MaxVio per MoE layer")

-- the sequence-wise auxiliary balance loss in pretraining: it adds to the loss
local function one(alpha)
  local mm, last = r1.load(src .. "/models/builtin")
  r1.pretrain{model = mm, tasks = "add:1", steps = 1, batch = 2, seq_len = 128, seed = 2,
              balance_alpha = alpha, on_step = function(s) last = s end}
  return last
end
local a0, a1 = one(0), one(0.5)
t.ok(a1.loss > a0.loss + 1e-3 and math.abs(a1.loss_main - a0.loss_main) < 1e-9,
     ("balance_alpha 0.5 adds its loss (%.4f over %.4f), the next-token loss unchanged")
     :format(a1.loss, a0.loss))
t.raises(function() one(-1) end, "balance_alpha", "a negative balance_alpha is refused by name")

-- MTP through GRPO: the loss on the completions is reported; 0 turns it off
local withm = step{mtp_lambda = 0.1}
t.ok(withm.mtp_loss > 0, ("GRPO's MTP loss on the completions: %.3f"):format(withm.mtp_loss))
t.is(step{mtp_lambda = 0}.mtp_loss, 0.0, "mtp_lambda 0: none")
t.raises(function() step{mtp_lambda = "x"} end, "mtp_lambda", "a misspelt value names the option")

-- completions cut off by max_new (TRL's completions/clipped_ratio)
local short = step{max_new = 4}
t.ok(short.clipped_ratio == 1 and short.len_max == 4 and short.len_min == 4,
     "max_new 4: every completion is cut off (clipped_ratio 1, lengths 4)")
local long = step{max_new = 200}
t.ok(long.clipped_ratio < 1 and long.len_min < 200, ("max_new 200: %.2f cut off (lengths %d..%d)")
     :format(long.clipped_ratio, long.len_min, long.len_max))

-- MTP acceptance in every evaluation
local e = r1.evaluate{model = m, tasks = "add:1", n = 2}
t.ok(#e.mtp_accept == 1 and e.mtp_accept[1] > 0.5 and e.mtp_accept[1] <= 1 and
     e.mtp_drafts[1] > 10, ("r1.evaluate: the MTP module's drafts accepted %.3f of %d")
     :format(e.mtp_accept[1], e.mtp_drafts[1]))
local st = r1.init({preset = "tiny", num_nextn_predict_layers = 0, hidden_size = 64,
                    num_hidden_layers = 2}, {seed = 1})
t.is(r1.evaluate{model = st, tasks = "add:1", n = 1}.mtp_accept, nil, "a model without MTP: none")

-- ... and in a trainer's evaluation, into its metrics
local run = os.tmpname()
os.remove(run)
r1.sft{model = r1.load(src .. "/models/builtin"), tasks = "add:1", steps = 1, batch = 2,
       seq_len = 128, eval_every = 1, eval_n = 1, out = run}
local fh = io.open(run .. "/metrics.jsonl")
local metrics = fh and fh:read("a") or ""
if fh then fh:close() end
t.ok(metrics:match('"eval%.mtp_accept":%s*%[%s*[%d.e-]+%s*%]') ~= nil,
     "the SFT run's metrics carry eval.mtp_accept")
os.execute("rm -rf '" .. run .. "'")

-- expert analytics
local a = r1.experts{model = m, tasks = "add:1-2,mul:1", n = 4}
t.ok(a.tokens > 100, "r1.experts reads " .. a.tokens .. " tokens")
t.is(#a.layers, 5, "a row per MoE layer")
local sum, good = 0, true
for _, x in ipairs(a.layers[1].load) do sum = sum + x end
for _, l in ipairs(a.layers) do
  good = good and l.maxvio >= 0 and l.jain >= 1 / 16 - 1e-9 and l.jain <= 1 + 1e-9
end
t.ok(math.abs(sum - 1) < 1e-6 and good, "each layer's load sums to 1; MaxVio >= 0; Jain in "
     .. "1/E..1")
local ntok, rows = 0, true
for name, c in pairs(a.classes) do
  ntok = ntok + c.tokens
  if c.tokens > 0 then
    local s = 0
    for _, x in ipairs(c.layers[2]) do s = s + x end
    rows = rows and math.abs(s - 1) < 1e-6 and #c.top == 5
  end
end
t.is(ntok, a.tokens, "every token falls in one class")
t.ok(rows and a.classes.digit.tokens > 0 and a.classes.tag.tokens > 0 and
     a.classes.word_es.tokens > 0, "digits, tags and Spanish words are among them, each with a "
     .. "share per expert")
t.ok(#a.paths >= 1 and a.paths[1].count >= (a.paths[2] or {count = 0}).count and
     #a.paths[1].experts == 5, "the most frequent top-expert paths, busiest first")
t.raises(function() r1.experts{model = m, tasks = "add:99"} end, "add has 1..10",
         "a difficulty outside the task's range")
t.raises(function() r1.experts{model = m, lang = "fr"} end, 'lang "fr"', "an unknown language")
local dense = r1.init({preset = "tiny", n_routed_experts = 0, num_nextn_predict_layers = 0})
t.raises(function() r1.experts{model = dense} end, "no routed experts", "a dense model")
t.done()
