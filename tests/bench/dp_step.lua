-- dp_step.lua pretrain PRESET BATCH SEQ STEPS | grpo STEPS — times training steps for
-- `make bench`'s data-parallel rows: run alone, or under `mpirun -np N` (the same global batch,
-- shared over the ranks).  Rank 0 prints one line: the mean step time after the first two
-- (the first steps of a process run slower, allocating and touching their memory),
-- the share of it spent in the ranks' collective sums (waiting for the slowest rank
-- included), and the bytes each rank gave to them per step.
local r1 = require "r1"
local what = arg[1]
local w = r1.world()
local times, comm, bytes = {}, {}, {}
local last_t, last_c, last_b
local seen = 0
local function on_step(s)
  local ww = r1.world()
  -- pretraining reports the run's wall time; GRPO its phases (the sums happen inside them)
  local t = s.elapsed or (last_t or 0) + s.t_sample + s.t_score + s.t_train
  local c, b = ww.comm_seconds, ww.comm_bytes
  seen = seen + 1
  if seen > 2 then
    times[#times + 1] = t - last_t
    comm[#comm + 1] = c - last_c
    bytes[#bytes + 1] = b - last_b
  end
  last_t, last_c, last_b = t, c, b
end
local function mean(x)
  local s = 0
  for _, v in ipairs(x) do s = s + v end
  return #x > 0 and s / #x or 0 / 0
end
local label
if what == "pretrain" then
  local preset, batch, seq, steps = arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
  label = ("pretrain %s %dx%d"):format(preset, batch, seq)
  last_t, last_c, last_b = nil, nil, nil
  -- the built-in tokenizer's vocabulary, so that every preset reads the tasks' text
  local vocab = r1.init("tiny"):config().vocab_size
  r1.pretrain{model = r1.init({preset = preset, vocab_size = vocab}, {seed = 1}), tasks = "add:1-3", steps = steps,
    batch = batch, seq_len = seq, eval_every = 0, seed = 1, on_step = on_step}
else
  local steps = tonumber(arg[2])
  local dir = (os.getenv("R1LAB_DATADIR") or ".") .. "/models/builtin"
  local ok, m = pcall(r1.load, dir)
  if not ok then m = r1.init("tiny", {seed = 1}) end
  label = "grpo 8 prompts x 8"
  r1.grpo{model = m, task = "add", steps = steps, prompts = 8, group = 8, max_new = 64,
    beta = 0.04, lr = 1e-6, on_step = on_step}
end
if w.rank == 0 then
  local t = mean(times)
  print(("%-22s %d rank(s) x %d thread(s): %.3f s/step, collectives %.1f%% of it, %.1f MB "
    .. "per rank per step"):format(label, w.size, r1.machine().threads, t,
    100 * mean(comm) / t, mean(bytes) / 1e6))
end
