-- the probe's M6: a theme that never ends
while true do end
return { text = 1 }
