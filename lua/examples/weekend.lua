-- 20% off for everyone at the weekend: the shop's weekend, in the zone
-- loyalty_timezone names (Asia/Shanghai: Saturday starts at 16:00 UTC on
-- Friday), daylight saving time included. money.percent_off keeps the
-- price a whole number of fen, rounded half up.
--
-- Try it for next Saturday before it goes live:
--   loyaltyctl --tz Asia/Shanghai --lua weekend.lua price sofa-298 \
--       --tier vip --now 2026-12-12T10:00:00+08:00

local date  = require "loyalty.date"
local money = require "loyalty.money"

local OFF_BP = 2000       -- basis points: 2000 = 20%

return {
  price = function(ctx)
    if date.is_weekend(ctx.now) then
      return money.percent_off(ctx.price * ctx.qty, OFF_BP), "Weekend"
    end
  end,
}
