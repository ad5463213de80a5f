-- fidelity.lua — R1's, V3's and their successors' claims beside r1lab's own numbers: runs a
-- chosen subset of evidence.lua's experiments and writes OUT/fidelity.md, one row per claim:
-- the claim, where it was published and the number there, r1lab's number with its seeds and
-- noise band, and whether it reproduces here.  The README's Results table is this file.
--
--   r1lab run scripts/fidelity.lua --stages DIR [--exp family,kl,controls] [--out evidence]
--                                  [--seeds 3] [--threads 0] [--part K/N] [--quick true]
--
-- DIR holds the models `r1lab run scripts/train_builtin.lua --stages DIR` kept after each
-- stage.  The experiments run as evidence.lua runs them (its runs are kept in OUT/cells/, so a
-- second call only writes the table; --part K/N runs a share of the runs, for N processes side
-- by side, and the last one to finish writes the table).  --quick runs every experiment for a
-- step or two on two problems, in OUT/quick: a smoke run whose numbers mean nothing.
--
-- The verdict of a comparison: two accuracies differ when their difference exceeds the 95%
-- band of the held-out sample (1.96 sqrt(p1 q1 / n + p2 q2 / n), n problems each: every run
-- is scored on the same problems, so more seeds do not narrow it); inside the band, a
-- difference counts when the seeds separate (every run of one above every run of the other),
-- and is "within the noise" otherwise.
local r1 = require "r1"
local common = require "common"
local a = common.args{stages = "", exp = "family,kl,controls", out = "evidence", seeds = 3,
                      threads = 0, part = "", quick = false, n = 64}
if a.stages == "" then error("--stages DIR: the models kept by train_builtin.lua --stages", 0) end
local out = a.quick and a.out .. "/quick" or a.out
local N = a.quick and 2 or a.n
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

-- runs evidence.lua --exp NAME with this run's options
local wanted = {}
for name in tostring(a.exp):gmatch("[^,]+") do
  if name ~= "family" and name ~= "kl" and name ~= "controls" then
    error("--exp: a list of family, kl and controls, got " .. name, 0)
  end
  wanted[name] = true
  local saved = arg
  arg = {"--exp", name, "--stages", a.stages, "--out", out, "--seeds", tostring(a.seeds),
         "--threads", tostring(a.threads), "--n", tostring(a.n)}
  if a.part ~= "" then
    arg[#arg + 1], arg[#arg + 2] = "--part", a.part
  end
  if a.quick then
    arg[#arg + 1], arg[#arg + 2] = "--quick", "true"
  end
  dofile(here .. "/evidence.lua")
  arg = saved
end

-- the runs of one cell (nil when one is missing), from evidence.lua's OUT/cells/
local function runs(ename, id)
  local t = {}
  for s = 1, a.quick and 1 or a.seeds do
    local path = ("%s/cells/%s.%s.%d.lua"):format(out, ename, id, s)
    local f = io.open(path)
    if not f then return nil end
    f:close()
    t[#t + 1] = dofile(path)
  end
  return t
end
local function avg(rs, k)
  local x = 0
  for _, r in ipairs(rs) do x = x + r[k] end
  return x / #rs
end
local function spread(rs, k)
  local lo, hi = math.huge, -math.huge
  for _, r in ipairs(rs) do lo, hi = math.min(lo, r[k]), math.max(hi, r[k]) end
  return hi - lo
end
-- 95% band of a difference of two accuracies on n problems each (N per difficulty)
local function band2(p, q, n)
  n = n or N
  return 1.96 * math.sqrt((p * (1 - p) + q * (1 - q)) / n)
end
local function problems(task)
  local lo, hi = tostring(task):match(":(%d+)-(%d+)$")
  return lo and (tonumber(hi) - tonumber(lo) + 1) * N or N
end
local function pct(x) return ("%.1f%%"):format(100 * x) end
local function seeds(rs) return ("%d seed%s"):format(#rs, #rs == 1 and "" or "s") end

-- held-out accuracy of a start model, as evidence.lua's cells measure theirs
local START = {}
local function before(start, task)
  local key = start .. task
  if not START[key] then
    START[key] = r1.evaluate{model = r1.load(a.stages .. "/" .. start), tasks = task,
                             n = N}.accuracy
  end
  return START[key]
end

-- the accuracies of a cell's runs
local function accs(rs)
  local t = {}
  for _, r in ipairs(rs) do t[#t + 1] = r.accuracy end
  return t
end
local function above_all(xs, ys) -- every x above every y
  for _, x in ipairs(xs) do for _, y in ipairs(ys) do if x <= y then return false end end end
  return true
end

-- A verdict on "x is higher than y" (strict) or "x is not lower than y": the difference
-- against the held-out band (the problems are the same for every run, so the seeds do not
-- shrink it), and, inside the band, whether the seeds separate (every run of one above every
-- run of the other).  xs, ys: the runs' accuracies.
local function compare(x, y, not_lower, n, xs, ys)
  local b, d = band2(x, y, n), x - y
  local pts = ("%+.1f"):format(100 * d)
  xs, ys = xs or {x}, ys or {y}
  if not_lower then
    if d >= 0 then return "yes (" .. pts .. ")" end
    if above_all(ys, xs) then return "no: every run lower (" .. pts .. ")" end
    if -d <= b then return "within the noise (" .. pts .. ")" end
    return "no (" .. pts .. ")"
  end
  if d > b then return "yes (" .. pts .. ")" end
  if d > 0 and above_all(xs, ys) then
    return ("yes: every run higher (%s, inside the held-out band ±%.1f)"):format(pts, 100 * b)
  end
  if d < 0 and above_all(ys, xs) then return "no: every run lower (" .. pts .. ")" end
  if math.abs(d) <= b then return "within the noise (" .. pts .. ")" end
  return "no: the opposite (" .. pts .. ")"
end

local rows = {}
local function row(claim, source, published, mine, verdict)
  rows[#rows + 1] = ("| %s | %s | %s | %s | %s |"):format(claim, source, published, mine,
    verdict)
end
local missing = {}
local function need(ename, id)
  local r = runs(ename, id)
  if not r then missing[#missing + 1] = ename .. "." .. id end
  return r
end

if wanted.controls then
  local c, b0 = need("controls", "sft-correct"), nil
  if c then
    b0 = before("sft", "add:4")
    local p = avg(c, "accuracy")
    row("RL on a rule-based accuracy reward raises reasoning accuracy",
        "DeepSeek-R1 (2025)", "R1-Zero: AIME 2024 pass@1 15.6% → 71.0%",
        ("add 4 digits from the cold-start model, %d steps: %s → %s (± %.1f; %s, spread %.1f)")
          :format(c[1].steps, pct(b0), pct(p), 100 * band2(p, b0), seeds(c),
                  100 * spread(c, "accuracy")),
        compare(p, b0, false, N, accs(c), {b0}))
  end
  for _, st in ipairs{{"sft", "add:4", "the cold-start model, add 4 digits"},
                      {"pretrain", "add:1-3", "the R1-Zero base, add 1-3 digits"}} do
    local cor = need("controls", st[1] .. "-correct")
    local parts, spur = {}, {}
    for _, id in ipairs{"random", "incorrect", "format_only"} do
      local r = need("controls", st[1] .. "-" .. id)
      if r then spur[id] = r end
    end
    if cor and spur.random and spur.incorrect and spur.format_only then
      local b = before(st[1], st[2])
      local pc = avg(cor, "accuracy")
      local by = {} -- the verdict against each spurious reward, grouped by its first word
      for _, id in ipairs{"random", "incorrect", "format_only"} do
        local p = avg(spur[id], "accuracy")
        local name = id:gsub("_", "-")
        parts[#parts + 1] = ("%s %+.1f (clip %.3f)"):format(name, 100 * (p - b),
          avg(spur[id], "clip"))
        local v = compare(pc, p, false, problems(st[2]), accs(cor), accs(spur[id]))
        local key = v:match("^yes") and "yes against" or v:match("^within") and
          "within the noise against" or "no against"
        if not by[key] then by[key], by[#by + 1] = {}, key end
        table.insert(by[key], name)
      end
      local verdict = {}
      for _, k in ipairs(by) do verdict[#verdict + 1] = k .. " " .. table.concat(by[k], ", ") end
      row("Only the correct reward helps on contamination-free data; spurious rewards do not",
          "Spurious Rewards (Shao et al., 2025)",
          "Qwen2.5-Math-7B, MATH-500: random +21.4, incorrect +24.1, format +13.8 vs correct "
            .. "+29.1 (contaminated); Llama 3 and OLMo 2: little or no gain",
          ("%s: correct %+.1f; %s (points against the start; ± %.1f; %s)"):format(st[3],
            100 * (pc - b), table.concat(parts, ", "), 100 * band2(pc, pc, problems(st[2])),
            seeds(cor)),
          table.concat(verdict, "; "))
    end
  end
  local z = need("controls", "pretrain-correct")
  if z then
    local s0, s1 = avg(z, "aha0"), avg(z, "aha1")
    local b = 1.96 * math.sqrt(math.max(s0 * (1 - s0) + s1 * (1 - s1), 1e-9) / (64 * #z))
    row("An \"aha moment\": self-verification appears during R1-Zero training",
        "DeepSeek-R1 (2025); Liu et al. (2025) find it already in the base",
        "qualitative (\"Wait, wait. That's an aha moment\"); present at step 0 in Qwen2.5 bases",
        ("R1-Zero base, correct reward: %s of samples at the first step, %s at the last (± %.1f; "
          .. "%s)"):format(pct(s0), pct(s1), 100 * b, seeds(z)),
        s1 > s0 + b and "yes" or s0 + s1 == 0 and
          "no: none at either end (the data has no such words to find)" or "within the noise")
  end
end

if wanted.kl then
  local on, off = need("kl", "beta0.04"), need("kl", "beta0")
  if on and off then
    local p1, p0 = avg(off, "accuracy"), avg(on, "accuracy")
    row("The KL term can be dropped from GRPO for reasoning RL",
        "DAPO (Yu et al., 2025); Dr. GRPO (Liu et al., 2025)",
        "DAPO, no KL: AIME 2024 50 with Qwen2.5-32B (naive GRPO 30)",
        ("add 4 digits, %d steps: β 0 %s vs β 0.04 %s (± %.1f; %s)"):format(off[1].steps,
          pct(p1), pct(p0), 100 * band2(p1, p0), seeds(off)),
        compare(p1, p0, true, N, accs(off), accs(on)))
  end
end

if wanted.family then
  local fam = {}
  for _, id in ipairs{"grpo", "dapo", "dr_grpo", "gspo", "cispo"} do
    fam[id] = need("family", id)
  end
  local function vs(x, y, claim, source, published, strict)
    if not (fam[x] and fam[y]) then return end
    local p, q = avg(fam[x], "accuracy"), avg(fam[y], "accuracy")
    row(claim, source, published, ("add 4 digits, %d steps each: %s %s vs %s %s (± %.1f; %s)")
      :format(fam[x][1].steps, x, pct(p), y, pct(q), 100 * band2(p, q), seeds(fam[x])),
      compare(p, q, not strict, N, accs(fam[x]), accs(fam[y])))
  end
  vs("gspo", "grpo", "GSPO (sequence-level ratio) trains at least as well as GRPO",
     "GSPO (Zheng et al., 2025)", "Qwen3-30B-A3B: higher training reward and benchmarks at "
       .. "equal compute")
  vs("cispo", "dapo", "CISPO does at least as well as DAPO (here at the same steps)",
     "MiniMax-M1 (2025)", "Qwen2.5-32B: DAPO's AIME 2024 in 50% of the steps")
  vs("dr_grpo", "grpo", "Dr. GRPO's unbiased averaging costs no accuracy",
     "Dr. GRPO (Liu et al., 2025)", "Qwen2.5-Math-7B: same accuracy, shorter wrong answers")
  vs("dapo", "grpo", "DAPO's recipe (token mean, clip-higher, dynamic sampling) beats GRPO",
     "DAPO (Yu et al., 2025)", "AIME 2024 50 vs 30 for naive GRPO (Qwen2.5-32B)", true)
end

if #missing > 0 then
  print(("fidelity: %d run%s still missing (%s); the table comes once all are in")
    :format(#missing, #missing == 1 and " is" or "s are", table.concat(missing, ", ")))
  return
end
local text = table.concat({
  ("Each claim beside r1lab's number at toy scale (the built-in recipe's stages, 5 M "
    .. "parameters, held-out problems: %d per difficulty, greedy). ± is the 95%% band of the "
    .. "held-out sample for the difference (every run is scored on the same problems, so the "
    .. "seeds do not narrow it); inside it, \"every run higher/lower\" means all runs of one "
    .. "side beat all of the other's, and \"within the noise\" that they do not. Written by "
    .. "`r1lab run scripts/fidelity.lua --stages DIR%s`."):format(N,
    a.quick and " --quick true" or ""),
  "",
  "| claim | source | published | r1lab | reproduces here? |",
  "| --- | --- | --- | --- | --- |",
  table.concat(rows, "\n"),
}, "\n")
common.write_atomic(out .. "/fidelity.md", text .. "\n")
print(text)
