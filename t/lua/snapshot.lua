-- t/lua-sandbox.t: a price hook that reads the store only once the store
-- has changed under the request (qty 2: it waits two seconds first).  The
-- price is one less than the line's, the label the retail price the store
-- answers: from one snapshot, the two agree.  os.date, slow for the few
-- instructions it counts, keeps the wait within the budget.

local store = require "loyalty.store"

return {
  price = function(ctx)
    if ctx.qty == 2 then
      local t0 = os.time()
      while os.time() < t0 + 2 do os.date("!*t") end
    end
    local p = store.price(ctx.sku)
    return ctx.price * ctx.qty - 1, "retail " .. p.retail
  end,
}
