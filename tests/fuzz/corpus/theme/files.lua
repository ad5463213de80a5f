local f = dofile("/dev/null")
return { name = "files", text = loadfile and 1 or 2 }
