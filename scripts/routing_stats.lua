-- routing_stats.lua — which experts fire on which tasks: for a few problems of each task,
-- count the experts every MoE layer chose over the reasoning tokens, and print each task's
-- most used experts per layer.
--   r1lab run scripts/routing_stats.lua [--n 4] [--max_tokens 96]
local r1 = require "r1"
local common = require "common"
local a = common.args{n = 4, max_tokens = 96}

local m = common.model()
local E = m:config().n_routed_experts
for _, info in ipairs(r1.tasks.list()) do
  local task = r1.tasks[info.name]{seed = 7}
  local counts, total = {}, 0
  for s in task:samples(a.n) do
    local _, res = m:ask(s.prompt, {max_tokens = a.max_tokens})
    for _, per_layer in ipairs(res.routing) do
      for _, r in ipairs(per_layer) do
        counts[r.layer] = counts[r.layer] or {}
        for _, e in ipairs(r.experts) do
          counts[r.layer][e] = (counts[r.layer][e] or 0) + 1
        end
      end
      total = total + 1
    end
  end
  local parts = {}
  for layer, c in pairs(counts) do
    local best, n = -1, -1
    for e = 0, E - 1 do
      if (c[e] or 0) > n then best, n = e, c[e] or 0 end
    end
    parts[#parts + 1] = ("L%d:e%d(%.0f%%)"):format(layer, best, 100 * n / math.max(total, 1))
  end
  table.sort(parts)
  print(("%-10s %4d tokens  top expert per layer: %s"):format(info.name, total,
    table.concat(parts, " ")))
end
