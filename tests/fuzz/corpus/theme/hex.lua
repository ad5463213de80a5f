return { name = "x", text = "#ff8800", background = "default", heat = {1, 2, {fg = "bright_red", bold = true}}, bars = {"cyan"} }
