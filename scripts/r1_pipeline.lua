-- r1_pipeline.lua — the DeepSeek-R1 pipeline in one page, with small settings, to read and
-- to change: base model -> cold start -> GRPO -> rejection sampling + SFT -> second RL stage
-- -> distillation into a dense student.  Each stage prints one line.
-- (scripts/train_builtin.lua is the same pipeline with the settings of the built-in model.)
--   r1lab run scripts/r1_pipeline.lua [--steps 20] [--model DIR]
local r1 = require "r1"
local common = require "common"
local a = common.args{steps = 20, model = "", out = os.tmpname()}

-- the base: a given checkpoint, else a fresh tiny model pretrained for a moment
local m
if a.model ~= "" then
  m = r1.load(a.model)
else
  m = r1.init("tiny", {seed = 1})
  r1.pretrain{model = m, tasks = "add:1-2", steps = a.steps, batch = 4, seq_len = 192,
              eval_every = 0, eval_n = 2}
end
local function report(stage)
  local e = r1.evaluate{model = m, tasks = "add:1-3", n = 4}
  print(("%-8s accuracy %.2f  format %.2f  language %.2f"):format(stage, e.accuracy, e.format,
    e.language))
end
report("base")

-- cold start: clean worked solutions, loss on the answer only
r1.sft{model = m, tasks = "add:1-2", steps = a.steps, batch = 4, seq_len = 192, eval_every = 0,
       eval_n = 2}
report("sft")

-- GRPO with rule-based rewards
r1.grpo{model = m, task = "add", difficulty = 2, steps = math.max(1, a.steps // 4), prompts = 4,
        group = 8, max_new = 96, rewards = {"accuracy", "format", {"language", weight = 0.5}}}
report("grpo")

-- rejection sampling, then SFT on what passed
local st = r1.reject_sample{model = m, task = "add", difficulty = 1, prompts = 16, k = 4,
                            max_new = 96, out = a.out}
if st.kept + st.direct > 0 then
  r1.sft{model = m, data = a.out, steps = a.steps // 2 + 1, batch = 4, seq_len = 192}
end
report("rs-sft")

-- the second RL stage: reasoning and general requests, rule and preference rewards
r1.grpo{model = m, tasks = {"add", "chat"}, difficulty = 1, steps = math.max(1, a.steps // 4),
        prompts = 4, group = 8, max_new = 96,
        rewards = {"accuracy", "format", "helpfulness", "harmlessness"}}
report("rl2")

-- distillation into a small dense student
local student = r1.init({preset = "tiny", hidden_size = 96, num_hidden_layers = 2,
  num_attention_heads = 2, n_routed_experts = 0, num_nextn_predict_layers = 0}, {seed = 2})
if st.kept + st.direct > 0 then
  r1.distill{student = student, teacher = m, data = a.out, steps = a.steps, batch = 4,
             seq_len = 192}
end
local e = r1.evaluate{model = student, tasks = "add:1-3", n = 4}
print(("student  accuracy %.2f  format %.2f  (%d parameters)"):format(e.accuracy, e.format,
  student:params().total))
os.remove(a.out)
