-- t_microscope.lua — the reasoning microscope's Lua calls on the built-in model: the token
-- inspector's fields of m:generate, m:lens, m:attention, r1.patch, r1.compare and reasoning
-- trees (branch, walk, save/load, cell), with their bad input.  The maths is checked against
-- the PyTorch reference in tests/t_inspect.c; here: shapes, consistency between the calls,
-- and the messages.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local t = require "tap"
local r1 = require "r1"
local src = os.getenv("top_srcdir") or "."
r1.set_threads(1)
local m = r1.load(src .. "/models/builtin")
local tok = m:tokenizer()
local q = "What is 457+389?"

-- the token inspector
local r = m:generate(q, {max_tokens = 80})
t.is(#r.top, #r.tokens, "res.top has an entry per generated token")
t.is(#r.entropy, #r.tokens, "res.entropy too")
t.is(#r.mtp, #r.tokens, "res.mtp too (the built-in model has an MTP module)")
local good = true
for i = 1, #r.tokens do
    local top = r.top[i]
    good = good and #top == 5 and top[1].p >= top[5].p and type(top[1].text) == "string"
    good = good and r.entropy[i] >= 0 and r.entropy[i] <= math.log(128) + 1e-4
    -- greedy: the token chosen is the most likely one, with the probability of its log-prob
    good = good and top[1].token == r.tokens[i]
                and math.abs(math.log(top[1].p) - r.logprobs[i]) < 1e-4
end
t.ok(good, "5 alternatives in order, the greedy token first with its probability, entropy " ..
     "within 0..log V")
local agree = 0
for i = 1, #r.tokens - 1 do
    if r.mtp[i].token == r.tokens[i + 1] then agree = agree + 1 end
end
t.ok(agree / (#r.tokens - 1) > 0.5, string.format("the MTP module predicts the next token " ..
     "mostly right on the built-in model (%d of %d)", agree, #r.tokens - 1))
local seen = 0
m:generate(q, {max_tokens = 5, on_token = function(e)
    if e.top and #e.top == 5 and e.entropy and e.mtp then seen = seen + 1 end
end})
t.is(seen, 5, "on_token's table carries top, entropy and mtp")
local got = 0
local stopped = m:generate(q, {max_tokens = 40, on_token = function() got = got + 1
                                                               return got < 3 end})
t.ok(got == 3 and stopped.finish == "cancel", "on_token returning false stops at once, also " ..
     "while events wait for the MTP module (" .. got .. " events)")
local off = m:generate(q, {max_tokens = 5, top_n = 0, mtp = false})
t.ok(off.top == nil and off.mtp == nil and off.entropy == nil, "top_n = 0, mtp = false turn " ..
     "them off")
t.raises(function() m:generate(q, {top_n = 33}) end, "'top_n' (an integer in 0..32",
         "top_n past 32 is refused")

-- m:replay reads a given completion like the generation that wrote it
local rp = m:replay(q, r.tokens)
local rworst, rsame = 0, rp.text == r.text
for i = 1, #r.tokens do
    rworst = math.max(rworst, math.abs(rp.logprobs[i] - r.logprobs[i]),
                      math.abs(rp.entropy[i] - r.entropy[i]))
    rsame = rsame and rp.top[i][1].token == r.top[i][1].token and rp.mtp[i].token == r.mtp[i].token
            and rp.routing[i][2].experts[1] == r.routing[i][2].experts[1]
end
t.ok(rsame and rworst < 1e-4, string.format("m:replay = the generation's records (worst %.1g)",
     rworst))
t.is(ui.context().tokens[1], r.tokens[1], "and becomes ui.context()")

-- the logit lens at the last prompt token and inside the reasoning
local ids = tok:encode("<|bos|><|user|>" .. q .. "<|assistant|><think>")
local np = #ids
for _, x in ipairs(r.tokens) do ids[#ids + 1] = x end
local lens = m:lens(ids, np + 1)
t.is(#lens.sites, 7, "m:lens: the embeddings and 6 layers")
t.is(lens.sites[1].name, "embed", "named embed")
t.is(lens.sites[7].name, "layer 5", "... to layer 5")
t.is(lens.sites[7].top[1].token, r.tokens[2], "the last layer predicts what greedy wrote next")
t.ok(math.abs(lens.sites[7].p_next - r.top[2][1].p) < 1e-4, "with the probability the " ..
     "inspector recorded")
t.is(#lens.sites[3].top, 3, "3 candidates per site by default")
t.is(#m:lens(ids, 5, {k = 6}).sites[1].top, 6, "k = 6 gives 6")
t.ok(lens.mtp and lens.mtp.top[1].token == r.mtp[1].token, "the MTP row agrees with res.mtp")
t.ok(m:lens(ids, 1).mtp == nil, "no MTP prediction at position 1")
t.raises(function() m:lens(ids, #ids + 1) end, "position " .. (#ids + 1) .. " is outside the " ..
         #ids .. " tokens (1.." .. #ids .. ")", "a position past the end")
t.raises(function() m:lens(ids, 0) end, "position 0 is outside", "position 0")
t.raises(function() m:lens({1, 2, 999}, 1) end, "token 2 is 999; expected 0..127",
         "a token outside the vocabulary")

-- attention
local a = m:attention(ids, 2)
local sh = a:shape()
t.ok(sh[1] == 6 and sh[2] == #ids and sh[3] == #ids, "m:attention: [heads, T, T]")
local row = 0
for u = 1, #ids do row = row + a:get(1, np + 1, u) end
t.ok(math.abs(row - 1) < 1e-5 and a:get(1, 3, 4) == 0, "rows sum to 1, nothing after the query")
t.is(m:attention(ids, 6):shape()[2], #ids - 1, "layer 6 is the MTP module's, on T - 1 tokens")
t.raises(function() m:attention(ids, 7) end,
         "layer 7 does not exist; expected 0..6 (the last is the MTP module's)", "a layer past it")
t.is(m:attention("457+389", 0):shape()[2], 7, "a string is encoded as it stands")

-- activation patching
local steps = 0
local p = r1.patch{model = m, clean = q, corrupt = "What is 457+388?", max_tokens = 60,
                   on_progress = function(done, total) steps = total end}
t.is(p.share:shape()[1], 7, "r1.patch: a map of 7 sites")
t.is(p.share:shape()[2], np, "... by the prompt's " .. np .. " positions")
t.is(steps, 7, "on_progress sees every site")
t.ok(p.lp_clean > p.lp_corrupt, string.format("the clean answer is likelier after the clean " ..
     "prompt (%.2f > %.2f)", p.lp_clean, p.lp_corrupt))
local diff
for i = 1, np do if p.tokens[i] ~= p.corrupt_tokens[i] then diff = i end end
t.ok(diff and math.abs(p.share:get(1, diff) - 1) < 1e-3, "patching the changed digit's " ..
     "embedding restores the clean run (share 1)")
t.ok(math.abs(p.share:get(1, 1)) < 1e-3, "patching an unchanged token's embedding does nothing")
local pe = r1.patch{model = m, clean = q, corrupt = "What is 457+388?", max_tokens = 60,
                    target = "experts", layer = 2}
t.ok(pe.share:shape()[1] == 16 and pe.share:shape()[2] == np and pe.sites[1] == "L2 e0",
     "target = \"experts\": a map of layer 2's 16 experts by the prompt's positions")
local quiet = true
for e = 1, 16 do for j = 1, 16 do quiet = quiet and math.abs(pe.share:get(e, j)) < 1e-3 end end
t.ok(quiet, "no expert before the changed digit matters")
t.raises(function() r1.patch{model = m, clean = q, corrupt = q, target = "experts"} end,
         "needs layer = N (a MoE layer, 1..5)", "target experts without a layer")
t.raises(function() r1.patch{model = m, clean = q, corrupt = q, target = "experts", layer = 0} end,
         "r1.patch: layer 0 is not a MoE layer", "a dense layer")
t.raises(function() r1.patch{model = m, clean = q, corrupt = "What is 457+3889?"} end,
         "same number of tokens (20 and 21)", "prompts of different lengths")
t.raises(function() r1.patch{model = m, clean = q, corrupt = q, target = "expert9"} end,
         "target \"expert9\" is not known", "an unknown target")
t.raises(function() r1.patch{model = m, corrupt = q} end, "'clean' (the clean prompt) is missing",
         "a missing prompt")

-- two models side by side
local b = r1.load(src .. "/models/builtin")
local c = r1.compare{a = m, b = b, prompt = "What is 12+7?", max_tokens = 60}
t.ok(c.same and c.diverge == nil and c.routing[1] == 0, "the same checkpoint twice: same text, " ..
     "same routing")
t.ok(c.routing[0] == nil, "layer 0 is dense: no routing share")
local fresh = r1.init({preset = "tiny", num_hidden_layers = 6}, {seed = 5})
local d = r1.compare{a = m, b = fresh, prompt = "What is 12+7?", max_tokens = 30}
t.ok(not d.same and d.diverge == 1 and d.routing[3] > 0.3, string.format("against an " ..
     "untrained model: diverges at token 1, routing differs (layer 3: %.2f)", d.routing[3] or -1))
t.is(d.b.tokens[1] ~= nil, true, "both completions are returned")
local small = r1.init({preset = "tiny", vocab_size = 64}, {seed = 5})
t.raises(function() r1.compare{a = m, b = small, prompt = {1, 2, 3}} end,
         "vocabularies differ (128 and 64 tokens)", "models with different vocabularies")

-- reasoning trees
local tr = m:tree(q, {task = "add", target = "846", max_tokens = 120})
local root = tr.nodes[1]
t.ok(root.answer == "846" and root.correct == true and root.reward == 1, "m:tree: the root " ..
     "answers 846, right, reward 1")
local at
for i = 2, #root.tokens do
    if tok:decode({root.tokens[i - 1]}) == "1" and tok:decode({root.tokens[i]}) == "6" then
        at = i
        break
    end
end
local br = tr:branch(1, at, tok:encode("7")[1])
t.ok(br.parent == 1 and br.at == at and br.forced == "7", "t:branch keeps the branch point")
t.ok(br.answer ~= nil and br.correct == false and br.reward == 0, "a carried 7 instead of 6: " ..
     "answer " .. tostring(br.answer) .. ", judged wrong")
local same = true
for i = 1, at - 1 do same = same and br.tokens[i] == root.tokens[i] end
t.ok(same, "the branch shares the root's tokens before the branch point")
local br2 = tr:branch(br, 3, "I think")
t.is(br2.parent, br.id, "a branch of a branch")
local order = {}
for node, depth in tr:walk() do order[#order + 1] = node.id .. "@" .. depth end
t.is(table.concat(order, " "), "1@0 2@1 3@2", "t:walk: depth first, with depths")
local fk = m:tree({1, 2, 3}, {tokens = {4, 5}}) -- adopts the tokens: no generation
fk.nodes = {{id = 1, children = {2, 4}}, {id = 2, children = {3}}, {id = 3, children = {}},
            {id = 4, children = {}}}
order = {}
for node, depth in fk:walk() do order[#order + 1] = node.id .. "@" .. depth end
t.is(table.concat(order, " "), "1@0 2@1 3@2 4@1", "t:walk: children in their order")
local N = 300000 -- deeper than C recursion could go on an 8 MB stack
fk.nodes = {}
for i = 1, N do fk.nodes[i] = {id = i, children = i < N and {i + 1} or {}} end
local cnt, last = 0, -1
for _, depth in fk:walk() do cnt, last = cnt + 1, depth end
t.ok(cnt == N and last == N - 1, "t:walk over a chain of 300000 nodes")
fk.nodes[N].children = {1}
t.raises(function() for _ in fk:walk() do end end, "node 1 is reached twice",
         "children lists that form a cycle: an error naming the node, not an endless walk")
local path = os.tmpname()
tr:save(path)
local back = r1.tree_load(m, path)
t.ok(#back.nodes == 3 and back.nodes[2].answer == br.answer and back.nodes[3].parent == 2 and
     back.task == "add", "t:save and r1.tree_load give the same tree")
os.remove(path)
local env = setmetatable({m = m, r1 = r1}, {__index = _G})
load(tr:cell(), "cell", "t", env)()
t.ok(env.t and #env.t.nodes == 3 and env.t.nodes[2].forced == "7", "t:cell rebuilds it in a " ..
     "notebook cell")
local other = m:tree("What is 1+1?", {max_tokens = 20})
t.raises(function() tr:branch(other.nodes[1], 1, 5) end, "not a node of this tree",
         "a node from another tree")
t.raises(function() tr:branch(1, 999, 5) end, "index 999 is outside node 1's", "an index past it")
t.raises(function() tr:branch(1, 1, 500) end, "token 500 is outside the vocabulary", "a bad token")
t.raises(function() r1.tree_load(m, '{"format":"r1lab-tree-1","prompt_ids":[1],' ..
    '"opts":{"max_tokens":5,"temperature":0,"seed":0},"nodes":[{"tokens":[1]},' ..
    '{"parent":7,"at":1,"forced":"x","tokens":[1]}]}') end,
    "node 2: 'parent' must be the id of an earlier node (1..1)", "a malformed tree names the node")
t.raises(function() r1.tree_load(m, "{ nope") end, "tree JSON: line 1", "bad JSON names the place")
t.raises(function() m:tree(q, {task = "add"}) end, "needs its target", "a task without target")

t.done()
