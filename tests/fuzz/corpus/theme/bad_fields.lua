return { text = "nocolour", think = {fg = 1, blink = true} }
