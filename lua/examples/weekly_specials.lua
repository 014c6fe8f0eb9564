-- Member-only weekly specials: a week's SKUs at a special unit price.
--
-- The week is the ISO week of the request time (the shop's), so "2026-W53" runs
-- Monday 2026-12-28 through Sunday 2027-01-03 across the year end. The
-- table lives in specials.lua next to this file; require "specials" finds
-- it in the script's own directory.

local date     = require "loyalty.date"
local promo    = require "loyalty.promo"
local specials = require "specials"

return {
  price = promo.members_only(function(ctx)
    local week = specials[date.week_key(ctx.now)]
    local unit = week and week[ctx.sku]
    if not unit then return nil end
    return unit * ctx.qty, "Weekly special"
  end),
}
