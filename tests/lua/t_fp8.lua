-- t_fp8.lua — FP8 from Lua: m:fp8 switches the training emulation, r1.pretrain{fp8 = ...}
-- for one run, m:save{dtype = "fp8"} writes DeepSeek-V3's layout that r1.load reads back, and
-- m:generate{weights = "fp8"} reports the FP8 weights' memory.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local t = require "tap"
local r1 = require "r1"
r1.set_threads(1)

local m = r1.init({preset = "tiny", num_hidden_layers = 2}, {seed = 3})
local rows = {{1, 5, 9, 13, 17, 21, 25, 29}, {2, 6, 10, 14, 18, 22, 26, 30}}
t.is(m:fp8(), "off", "FP8 emulation is off by default")
local plain = m:forward(rows).loss
t.is(m:fp8("tiles"), "off", "m:fp8(mode) returns the mode before")
t.is(m:fp8(), "tiles", "... and switches")
local q = m:forward(rows).loss
t.ok(q ~= plain and math.abs(q - plain) / plain < 0.01,
  string.format("fine-grained FP8 moves the loss a little (%.6f -> %.6f)", plain, q))
m:fp8("off")
t.is(m:forward(rows).loss, plain, "off again: the same loss, bit for bit")
t.raises(function() m:fp8("fp4") end, "invalid option", "an unknown mode is refused")

local pre = r1.pretrain{model = m, steps = 1, batch = 2, seq_len = 96, eval_every = 0,
  eval_n = 1, fp8 = true}
t.is(pre.step, 1, "r1.pretrain{fp8 = true} runs")
t.is(m:fp8(), "off", "... and leaves the model's own setting as it was")
pre = r1.pretrain{model = m, steps = 1, batch = 2, seq_len = 96, eval_every = 0,
  eval_n = 1, precision = "bf16"}
t.ok(pre.step == 1 and m:precision() == "fp32", "r1.pretrain{precision = 'bf16'} runs, and "
  .. "the model's own precision stays fp32")
t.raises(function() r1.pretrain{model = m, steps = 1, precision = "fp8", fp8 = true} end,
  "not both", "precision and fp8 together are refused")
t.raises(function() r1.pretrain{model = m, steps = 1, precision = "bf61"} end,
  "precision", "a misspelt precision is refused, naming the setting")
local base = m:forward(rows).loss -- the weights have trained since `plain`
t.is(m:precision("bf16"), "fp32", "m:precision(p) returns the precision before")
local b = m:forward(rows).loss
t.ok(b ~= base and math.abs(b - base) / base < 0.01,
  string.format("bf16 moves the loss a little (%.6f -> %.6f)", base, b))
t.is(m:precision("fp32"), "bf16", "... and switches")
t.is(m:forward(rows).loss, base, "fp32 again: the same loss, bit for bit")
t.raises(function() m:precision("fp16") end, "invalid option", "an unknown precision is refused")

local dir = os.tmpname()
os.remove(dir)
m:save(dir, {dtype = "fp8"})
local f = io.open(dir .. "/config.json")
local cfg = f:read("a")
f:close()
t.ok(cfg:find('"quant_method": "fp8"', 1, true), "m:save{dtype = 'fp8'} writes quantization_config")
local back = r1.load(dir)
local again = back:forward(rows).loss
t.ok(math.abs(again - plain) / plain < 0.01,
  string.format("the FP8 checkpoint loads and gives nearly the same loss (%.6f)", again))
local res = back:generate({1, 2, 3}, {max_tokens = 4, chat = false, weights = "fp8"})
t.ok(res.weight_bytes > 0 and res.weight_bytes * 3.9 < res.weight_bytes_fp32,
  string.format("weights = 'fp8' holds %d bytes against %d in fp32", res.weight_bytes,
    res.weight_bytes_fp32))
os.execute("rm -rf '" .. dir .. "'")
t.done()
