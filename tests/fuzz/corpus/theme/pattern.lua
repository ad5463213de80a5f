local s = string.rep("a", 5000)
local ok = s:find(".-.-.-.-.-.-b")
return { text = ok and 1 or 2 }
