-- reproduce.lua — the figures of the README's "Training your own" from their own commands: the
-- two `r1lab train` commands there (pretraining, then cold-start SFT on addition up to 3
-- digits) run for several seeds and BLAS kernel families, and a table of every cell's mean and
-- range over the runs.
--
--   r1lab run scripts/reproduce.lua [--seeds 1,2,3] [--kernels env,SkylakeX]
--                                   [--out reproduce] [--threads 0] [--quick false]
--   r1lab run scripts/reproduce.lua --commands true   (prints the two commands, as the README
--                                                       has them for seed 1, and stops)
--   r1lab run scripts/reproduce.lua --collect true ...  (the table of the finished runs only,
--                                                       training none)
--
-- --kernels, the OpenBLAS kernels of each series of runs: "env" as the environment has them
-- (OPENBLAS_CORETYPE if it is set), "auto" OpenBLAS's own choice for this CPU (the variable
-- removed), or a name for OPENBLAS_CORETYPE (Haswell, SkylakeX, Cooperlake, Zen ...): the
-- kernels OpenBLAS picks on another CPU, so that one machine shows how the results move with
-- another's rounding.  The table names the kernels each run used.  On the avx512bf16 and amx
-- kernel paths fp32 training runs on r1lab's own GEMM, not OpenBLAS, and the families give the
-- same runs to the bit; R1_ISA=avx2 in the environment puts training back on OpenBLAS's kernels
-- for such a comparison.
-- Each run is two run folders, OUT/KERNELS-seedS/base and .../sft; a finished one is reused,
-- so a stopped sweep continues where it stopped.  Writes OUT/results.md and prints it.
-- The thread count does not change the results (the engine cuts products by their shape).
local r1 = require "r1"
local common = require "common"
local a = common.args{seeds = "1,2,3", kernels = "env,SkylakeX", out = "reproduce",
                      threads = 0, quick = false, commands = false,
                      collect = false}

-- The README's commands, flag for flag (tests/lua/t_scripts.sh checks that they still are).
local PRETRAIN = {{"stage", "pretrain"}, {"model", "tiny"}, {"tasks", "add:1-3"},
                  {"steps", 1600}, {"batch", 8}, {"lr", "3e-3"}, {"min-lr", "3e-4"},
                  {"warmup", 30}, {"eval-every", 1600}}
local SFT = {{"stage", "sft"}, {"tasks", "add:1-3"}, {"steps", 200}, {"lr", "1.5e-3"},
             {"min-lr", "1e-4"}, {"warmup", 20}, {"sft-docs", 0}, {"eval-every", 200},
             {"eval-n", 64}}
local QUICK = {steps = 3, ["eval-every"] = 3, ["eval-n"] = 2, warmup = 1}
local DIGITS, TRAINED = 5, 3

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local exe = q(arg[-1] or "r1lab") -- the shell's words that start r1lab
local function list(s)
  local t = {}
  for x in tostring(s):gmatch("[^,%s]+") do t[#t + 1] = x end
  return t
end

-- the command line of one stage: its flags (the quick values in --quick), then these
local function command(flags, extra)
  local parts = {exe, "train"}
  for _, f in ipairs(flags) do
    local v = f[2]
    if a.quick and QUICK[f[1]] then v = QUICK[f[1]] end
    parts[#parts + 1] = "--" .. f[1] .. " " .. q(v)
  end
  for _, f in ipairs(extra) do parts[#parts + 1] = "--" .. f[1] .. " " .. q(f[2]) end
  if a.threads ~= 0 then parts[#parts + 1] = "--threads " .. q(a.threads) end
  return table.concat(parts, " ")
end

local function read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The last evaluation in a run folder's metrics.jsonl, as {key = number}; nil before one.
local function last_eval(dir)
  local text, line = read(dir .. "/metrics.jsonl"), nil
  for l in (text or ""):gmatch("[^\n]+") do
    if l:find('"eval.accuracy"', 1, true) then line = l end
  end
  if not line then return nil end
  local t = {}
  for k, v in line:gmatch('"([%w_.]+)":(%-?[%d.eE+-]+)') do t[k] = tonumber(v) end
  return t
end

local function done(dir, steps)
  local e = last_eval(dir)
  return e and e.step == steps and read(dir .. "/model.safetensors") ~= nil and e or nil
end

local function steps_of(flags)
  if a.quick then return QUICK.steps end
  for _, f in ipairs(flags) do if f[1] == "steps" then return f[2] end end
end
local PRETRAIN_STEPS, SFT_STEPS = steps_of(PRETRAIN), steps_of(SFT)

local function stage(flags, dir, extra, log)
  local steps = steps_of(flags)
  local e = done(dir, steps)
  if e then return e, 0, true end
  os.execute("rm -rf " .. q(dir))
  local t0 = os.time()
  local ok, how, code = os.execute(command(flags, extra) .. " > " .. q(log) .. " 2>&1")
  if not ok then
    local tail = (read(log) or ""):gsub("^.*\n(.-\n.-\n.-)$", "%1")
    error(("%s: r1lab train %s (%s %s); its log %s ends:\n%s"):format(dir, how == "signal" and
      "was killed" or "failed", how, tostring(code), log, tail), 0)
  end
  e = done(dir, steps)
  if not e then error(dir .. ": no evaluation after the last step in metrics.jsonl", 0) end
  return e, os.time() - t0, false
end

local function machine(dir)
  local s = read(dir .. "/checkpoint/trainer_state.json") or ""
  return s:match('"cpu": "([^"]*)"') or "?", s:match('"isa": "([^"]*)"') or "?",
         s:match('"blas": "([^"]*)"') or "?", tonumber(s:match('"threads": (%d+)')) or 0
end

if a.commands then
  exe = "r1lab"
  print((command(PRETRAIN, {{"out", "base"}, {"seed", 1}}):gsub("'", "")))
  print((command(SFT, {{"model", "base"}, {"out", "sft"}, {"seed", 1}}):gsub("'", "")))
  return
end

os.execute("mkdir -p " .. q(a.out))
local runs = {}
for _, k in ipairs(list(a.kernels)) do
  -- the kernels for the child processes only (Lua has no setenv; the command carries them)
  local plain = exe
  if k == "auto" then
    exe = "env -u OPENBLAS_CORETYPE " .. plain
  elseif k ~= "env" then
    exe = "env OPENBLAS_CORETYPE=" .. q(k) .. " " .. plain
  end
  for _, s in ipairs(list(a.seeds)) do
    local dir = ("%s/%s-seed%s"):format(a.out, k, s)
    if a.collect and not (done(dir .. "/base", PRETRAIN_STEPS) and done(dir .. "/sft", SFT_STEPS))
    then
      print(("%s kernels, seed %s: not finished, left out"):format(k, s))
      goto next
    end
    os.execute("mkdir -p " .. q(dir))
    io.write(("%s kernels, seed %s: pretraining ... "):format(k, s))
    io.stdout:flush()
    local pe, pt, pk = stage(PRETRAIN, dir .. "/base",
                             {{"seed", s}, {"out", dir .. "/base"}}, dir .. "/base.log")
    io.write(("%.1f%% on the trained difficulties (%s); SFT ... "):format(
      100 * pe["eval.accuracy_in"],
      pk and "kept" or pt .. " s"))
    io.stdout:flush()
    local se, st, sk = stage(SFT, dir .. "/sft",
                             {{"model", dir .. "/base"}, {"seed", s}, {"out", dir .. "/sft"}},
                             dir .. "/sft.log")
    print(("%.1f%% on the trained difficulties (%s)"):format(100 * se["eval.accuracy_in"],
      sk and "kept" or st .. " s"))
    local cpu, isa, blas, threads = machine(dir .. "/sft")
    -- the wall time as the runs recorded it (kept runs too): steps, then the last evaluation
    local secs = (pe.elapsed or 0) + (pe["eval.seconds"] or 0) + (se.elapsed or 0)
                 + (se["eval.seconds"] or 0)
    runs[#runs + 1] = {kernels = k, seed = s, pre = pe, sft = se, cpu = cpu, isa = isa,
                       blas = blas, threads = threads, seconds = secs}
    ::next::
  end
  exe = plain
end

-- mean [min-max] of f(run) over the runs, in percent
local function spread(f)
  local sum, lo, hi = 0, math.huge, -math.huge
  for _, r in ipairs(runs) do
    local v = 100 * f(r)
    sum, lo, hi = sum + v, math.min(lo, v), math.max(hi, v)
  end
  local m = sum / #runs
  if #runs == 1 or hi - lo < 0.05 then return ("%.1f%%"):format(m) end
  return ("%.1f%% [%.1f–%.1f]"):format(m, lo, hi)
end
local function cell(d, what)
  return spread(function(r) return r.sft[("eval.add.%d.%s"):format(d, what)] or 0 end)
end

local out = {}
local function say(s) out[#out + 1] = s end
if #runs == 0 then error("no finished runs in " .. a.out, 0) end
local order, per = {}, {}
for _, r in ipairs(runs) do
  local kn = r.blas:match("(%S+) kernels$") or r.blas
  if not per[kn] then order[#order + 1], per[kn] = kn, {} end
  table.insert(per[kn], r.seed)
end
local series = {}
for _, kn in ipairs(order) do
  series[#series + 1] = ("%s kernels, seed%s %s"):format(kn, #per[kn] == 1 and "" or "s",
    table.concat(per[kn], ", "))
end
say(("Pretraining and cold-start SFT (the two commands of Training your own)%s: %d run%s (%s) "
  .. "on %s (%s). Held out, greedy, after SFT; mean [range] over the runs:")
  :format(a.quick and ", QUICK settings" or "", #runs, #runs == 1 and "" or "s",
  table.concat(series, "; "), runs[1].cpu, runs[1].isa))
say("")
say("| add, digits | trained on | accuracy | format | language |")
say("| ---: | :---: | ---: | ---: | ---: |")
for d = 1, DIGITS do
  say(("| %d | %s | %s | %s | %s |"):format(d, d <= TRAINED and "yes" or "no",
    cell(d, "accuracy"), cell(d, "format"), cell(d, "language")))
end
say("")
say("Trained difficulties after SFT: " .. spread(function(r) return r.sft["eval.accuracy_in"] end)
  .. "; after pretraining alone: " .. spread(function(r) return r.pre["eval.accuracy_in"] end)
  .. " (format " .. spread(function(r) return r.pre["eval.format"] end) .. ").")
local secs, lo, hi, th = 0, math.huge, 0, {}
for _, r in ipairs(runs) do
  secs, lo, hi = secs + r.seconds, math.min(lo, r.seconds), math.max(hi, r.seconds)
  th[r.threads] = true
end
local tl = {}
for t in pairs(th) do tl[#tl + 1] = tostring(t) end
table.sort(tl)
say(("Wall time of the two commands, evaluations included, as the runs recorded it: %.1f "
  .. "minutes on average [%.1f–%.1f], on %s thread%s per run (another run may have shared the "
  .. "cores)."):format(secs / #runs / 60, lo / 60, hi / 60, table.concat(tl, " or "),
  (#tl == 1 and tl[1] == "1") and "" or "s"))
say("")
say("| kernels | seed | pretraining, trained difficulties | SFT add 1 | add 2 | add 3 "
  .. "| SFT trained |")
say("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for _, r in ipairs(runs) do
  local function p(v) return ("%.1f%%"):format(100 * (v or 0)) end
  say(("| %s | %s | %s | %s | %s | %s | %s |"):format(r.blas:match("(%S+) kernels$") or r.blas,
    r.seed, p(r.pre["eval.accuracy_in"]), p(r.sft["eval.add.1.accuracy"]),
    p(r.sft["eval.add.2.accuracy"]), p(r.sft["eval.add.3.accuracy"]),
    p(r.sft["eval.accuracy_in"])))
end
local text = table.concat(out, "\n")
common.write_atomic(a.out .. "/results.md", text .. "\n")
print()
print(text)
