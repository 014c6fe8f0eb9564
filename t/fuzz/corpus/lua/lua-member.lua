-- t/lua.t: the member a price hook sees.  The label lists the fields the
-- request knew, then those read from the store when first asked for.
local function s(v) return v == nil and "nil" or tostring(v) end

return {
  price = function(ctx)
    local m = ctx.member
    if not m then return nil end
    local known = { m.id, m.tier, s(m.rank), m.stage, s(m.points), s(m.blocked) }
    local read = { s(m.orders), s(m.spend), s(m.birthday), s(m.referrer),
                   s(m.last_order_at), s(m.joined_at) }
    return ctx.price * ctx.qty - 1,
           table.concat(known, ",") .. ";" .. table.concat(read, ",")
  end,
}
