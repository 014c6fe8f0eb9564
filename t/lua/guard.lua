-- t/lua.t: price hook answers the module must guard against, by SKU.
-- Each answer is on its own line, so that each failure is its own place.

local answers = {
  up    = function(ctx) return ctx.price * ctx.qty + 500, "Dearer" end,
  half  = function(ctx)
            if ctx.tier == "public" then
              return ctx.price * ctx.qty / 2, "Half price"
            end
          end,
  table = function(ctx) return { price = ctx.price * ctx.qty - 1, label = "Table form" } end,
  zero  = function() return 0, "Free" end,
  neg   = function() return -1, "Negative" end,
  nan   = function() return 0 / 0, "NaN" end,
  frac  = function() return 12.5, "Fraction" end,
  str   = function() return "100", "String" end,
  huge  = function() return 1e300, "Huge" end,
  inf   = function() return math.huge, "Infinite" end,
  label = function() return 1, 42 end,
  tlabel = function() return { price = 1, label = {} } end,
  boom  = function() error("boom") end,
  long  = function(ctx) return ctx.price - 1, "a" .. string.rep("\195\169", 40) end,
  ctl   = function(ctx) return ctx.price - 1, "a\"b\n\\c" end,
  badutf = function(ctx) return ctx.price - 1, "caf\255 sale" end,
}

return {
  price = function(ctx)
    local f = answers[ctx.sku]
    if f then return f(ctx) end
    return nil
  end,
}
