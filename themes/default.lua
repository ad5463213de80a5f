-- default.lua — the dark theme r1lab starts with.  Colours are names ("cyan",
-- "bright_white", "default" for the terminal's own), numbers 0-255 of the xterm palette, or
-- "#rrggbb"; a role may also be a table {fg=, bg=, bold=, dim=, underline=, reverse=,
-- italic=}.  On an 8-colour terminal each colour falls back to the nearest of the eight.
return {
    name = "default",
    text = "default",
    dim = 245,
    think = 117,                                  -- the reasoning text
    answer = { fg = "bright_white", bold = true },
    right = { fg = "green", bold = true },
    wrong = { fg = "red", bold = true },
    bar = 75,
    border = 240,
    focus = { fg = "yellow", bold = true },      -- the border of the focused pane
    title = { fg = "bright_white", bold = true },
    prompt = { fg = "green", bold = true },
    error = 203,
    selected = { fg = "black", bg = 220 },       -- the token cursor, the current cell
    status = { fg = 252, bg = 236 },
    code = 180,
    plot = 81,
    special = 243,                                -- <think>, <answer>, <|eos|>
    doubt = 214,                                  -- tokens chosen with some doubt (the 'c' key)
    unsure = { fg = 196, bold = true },           -- ... and with little confidence
    heat = { 24, 31, 37, 72, 149, 185, 208, 196 },  -- the heatmap, cold to hot
    bars = { "green", "cyan", "magenta", "yellow", "blue", "red" },  -- reward components
}
