-- t_ui.lua — the `ui` table headless: ui.step and ui.group accept what the workbench shows
-- and are no-ops without it; malformed arguments get clear errors.
package.path = arg[0]:match("^(.*/)") .. "?.lua;" .. package.path
local t = require "tap"

t.ok(type(ui) == "table", "ui is a global in r1lab")
t.is(ui.active(), false, "no workbench shows headless")
t.ok(pcall(ui.step, {stage = "grpo", step = 1, total = 3,
                     stats = {reward = 0.5, accuracy = 0.25, kl = 0.01},
                     load = {{0.5, 0.5}, {0.75, 0.25}}, bias = {{0.01, -0.01}, {0, 0}}}),
     "ui.step takes stats, expert load and bias")
t.ok(pcall(ui.group, {prompt = "2+3?", reward_names = {"accuracy", "format"},
                      completions = {{text = "5", rewards = {1, 1}},
                                     {text = "6", rewards = {accuracy = 0, format = 1},
                                      correct = false}}}),
     "ui.group takes completions with rewards as a list or by name")
t.raises(function() ui.step() end, "bad argument #1", "ui.step needs a table")
t.raises(function() ui.step{stats = 3} end, "'stats' expects a table", "stats must be a table")
t.raises(function() ui.step{step = 1.5} end, "bad option 'step'", "step must be an integer")
t.raises(function() ui.step{load = {{1, 2}, {3}}} end, "row 2 has 1 values, row 1 has 2",
  "ragged load rows are named")
t.raises(function() ui.step{load = {{1, "x"}}} end, "'load'[1][2] is not a number",
  "a non-number is located")
t.raises(function() ui.step{load = {{1, 2}}, bias = {{1}}} end, "needs a 'load' of the same shape",
  "bias and load must match")
t.raises(function() ui.group{} end, "'completions' expects a list", "ui.group needs completions")
t.raises(function() ui.group{completions = {3}} end, "completion 1 is not a table",
  "each completion is a table")
t.done()
