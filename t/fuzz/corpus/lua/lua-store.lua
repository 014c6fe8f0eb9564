-- t/lua.t: loyalty.store inside a price hook.  The label says what the
-- store answered; the price is one less than the tier's, to show the hook ran.

local store = require "loyalty.store"
local tag = require "lib.tag"

return {
  price = function(ctx)
    if ctx.sku ~= "peek" then return nil end
    local m = store.member("mem1")
    local p = store.price("tea", "gold")
    local q = store.price("tea")
    local parts = {
      m.id, m.tier, m.stage, tostring(m.rank), tostring(m.points),
      tostring(p.retail), tostring(p.price), tostring(q.price),
      tostring(store.member("nobody")), tostring(store.price("nope")),
      tostring(store.price("tea", "no-such-tier")),
    }
    return ctx.price * ctx.qty - 1, tag(table.concat(parts, "/"))
  end,
}
