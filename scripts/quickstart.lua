-- quickstart.lua — load the built-in model, ask it something, and look at how it thought:
-- the reasoning, the answer, and which experts each MoE layer chose for each token.
--   r1lab run scripts/quickstart.lua [--question "What is 457+389? Think in English."]
local r1 = require "r1"
local common = require "common"
local a = common.args{question = "What is 457+389? Think in English.", max_tokens = 200}

local m = common.model()
print(m)
local answer, res = m:ask(a.question, {max_tokens = a.max_tokens})
print("reasoning:\n" .. res.think)
print("answer: " .. tostring(answer) .. "  (" .. res.finish .. ", " .. #res.tokens .. " tokens)")

-- which experts did the first MoE layer choose, token by token?
local tok = m:tokenizer()
print("\nrouting of the first MoE layer (token: experts):")
for i = 1, math.min(#res.tokens, 12) do
  local r = res.routing[i][1]
  print(("%-10s layer %d: %s"):format(("%q"):format(tok:token(res.tokens[i])), r.layer,
    table.concat(r.experts, " ")))
end
