-- mono.lua — no colours at all, only bold, dim, underline and reverse: for terminals without
-- colours, NO_COLOR, and screenshots that must print well.  The heatmap still reads through
-- its block heights.
return {
    name = "mono",
    text = "default",
    dim = { dim = true },
    think = {},
    answer = { bold = true },
    right = { bold = true },
    wrong = { reverse = true },
    bar = {},
    border = {},
    focus = { bold = true },
    title = { bold = true },
    prompt = { bold = true },
    error = { bold = true },
    selected = { reverse = true },
    status = { reverse = true },
    code = {},
    plot = {},
    special = { dim = true },
    doubt = { underline = true },
    unsure = { bold = true, underline = true },
    heat = { {}, {}, { bold = true }, { bold = true } },
    bars = { {}, { bold = true } },
}
