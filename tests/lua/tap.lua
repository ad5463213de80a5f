-- tap.lua — a tiny TAP producer for the Lua tests (run by `r1lab run`, see Makefile.am).
local M = {n = 0, failed = 0}

function M.ok(cond, name)
  M.n = M.n + 1
  if not cond then M.failed = M.failed + 1 end
  print((cond and "ok " or "not ok ") .. M.n .. " - " .. name)
  return cond
end

function M.is(got, want, name)
  local ok = M.ok(got == want, name)
  if not ok then print("#   got " .. tostring(got) .. ", expected " .. tostring(want)) end
  return ok
end

-- passes when tostring(s) matches the Lua pattern `pattern`
function M.like(s, pattern, name)
  local ok = M.ok(tostring(s):find(pattern) ~= nil, name)
  if not ok then print("#   " .. tostring(s)) end
  return ok
end

-- passes when f raises an error whose message contains `pattern` (plain text)
function M.raises(f, pattern, name)
  local ok, err = pcall(f)
  local pass = not ok and tostring(err):find(pattern, 1, true) ~= nil
  if not M.ok(pass, name) then print("#   " .. (ok and "no error" or tostring(err))) end
  return pass
end

function M.done()
  print("1.." .. M.n)
  if M.failed > 0 then os.exit(1) end
end

package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
return M
