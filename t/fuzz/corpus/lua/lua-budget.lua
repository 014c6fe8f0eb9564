-- t/lua-sandbox.t: hooks that run away, by SKU; any other SKU is priced
-- one less than the tier's, to show the VM still works.

local CASES = {
  loop    = function() while true do end end,
  hot     = function() local s = 0 for i = 1, 1e9 do s = s + i % 7 end return s end,
  recurse = function() local function f(n) return f(n + 1) + 1 end return f(1) end,
  pcall   = function() for i = 1, 1e9 do pcall(function() while true do end end) end end,
  xpcall  = function() while true do xpcall(function() while true do end end, function(e) while true do end end) end end,
  loaded  = function() return load("local n = 0 while true do n = n + 1 end")() end,
  rep     = function() return #string.rep("x", 1e9) end,
  double  = function() local s = "x" for i = 1, 40 do s = s .. s end return #s end,
  grow    = function() local t = {} for i = 1, 1e9 do t[i] = { i } end end,
  concat  = function() local t = {} for i = 1, 1e6 do t[i] = "xxxxxxxx" end return #table.concat(t) end,
}

return {
  price = function(ctx)
    local f = CASES[ctx.sku]
    if f then f() return 1, "escaped" end
    if ctx.sku == "hog" then             -- keeps 128k more at every call
      HOG = HOG or {}
      HOG[#HOG + 1] = string.rep("x", 2^17) .. #HOG
    end
    return ctx.price * ctx.qty - 1, "ok"
  end,
}
