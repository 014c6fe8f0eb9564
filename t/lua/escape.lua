-- t/lua-sandbox.t: hooks that try to get past their budget through the
-- project's library (once JIT-compiled, where no count hook fires), Lua
-- patterns and other C functions: the price hook by SKU, the click hook
-- on a WeChat User-Agent, the event hook by the event's id.  Anything
-- else is priced one less and its event given 3 points, to show the VM
-- still works.

local cadence = require "loyalty.cadence"

-- a condition that calls a library closure 150^4 times, all of it inside
-- the library's loops
local function rep(f, n)
  local t = {}
  for i = 1, n do t[i] = f end
  return cadence.all(unpack(t))
end
local NEST = rep(rep(rep(rep(cadence.stage_at_least("member"), 150), 150),
                     150), 150)

local LOOPS = {
  nest     = function() local x = NEST({ stage = "partner" }) end,
  find400  = function() local x = ("a"):rep(400):find(".-.-.-b") end,
  find800  = function() local x = ("a"):rep(800):find(".-.-.-b") end,
  gsub     = function() local x = ("a"):rep(2000):gsub(".-.-b", "x") end,
  gmatch   = function() for x in ("a"):rep(2000):gmatch(".-.-b") do end end,
  pcall    = function()
    local s = ("a"):rep(400)
    for i = 1, 1e9 do pcall(string.find, s, ".-.-.-b") end
  end,
  sort     = function()
    table.sort({ 5, 3, 1, 4, 2 }, function(a, b) while true do end end)
  end,
  tostring = function()
    local x = tostring(setmetatable({}, {
      __tostring = function() while true do end end }))
  end,
  rep      = function() local x = #string.rep("abc", 1e8, ",") end,
  reps     = function() while true do local s = ("x"):rep(8e6) end end,
  concat   = function()
    local t = { ("x"):rep(7999):byte(1, -1) }
    for i = 1, #t do t[i] = "" end
    while true do table.concat(t) end
  end,
}

return {
  price = function(ctx)
    local f = LOOPS[ctx.sku]
    if f then f() return 1, "escaped" end
    return ctx.price * ctx.qty - 1, "ok"
  end,

  click = function(ctx)
    local ua = ctx.user_agent or ""
    local os, browser = ua:match("(.-)%s+(.-)%s+MicroMessenger")
    return os and "wechat" or "other"
  end,

  event = function(ctx)
    if ctx.id:sub(1, 4) == "nest" then NEST({ stage = "partner" }) end
    return { points = 3 }
  end,
}
